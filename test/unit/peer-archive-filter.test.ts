// The filter a peer's archive passes on its way into `docker load`, over archives laid out as
// `docker save` writes them: the legacy layout (dockerd 20.10–24: <v1 id>/layer.tar, <config>.json,
// manifest.json, repositories) and the OCI one (dockerd 25+: blobs/sha256/…, index.json, oci-layout).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import tar from 'tar-stream'
import { archivePath, filterPeerArchive } from '../../src/peers/archive-filter.js'

type Entry = { name: string; body?: Buffer | string; type?: 'file' | 'directory' | 'symlink'; linkname?: string }

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const CONFIG = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }))
const ID = `sha256:${sha(CONFIG)}`
/** above the size the filter holds in memory, so it streams through */
const LAYER = randomBytes(5 * 1024 * 1024)
const V1 = sha('v1-layer-id')

async function archive(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack()
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file')
    const header = { name: e.name, type, linkname: e.linkname, mode: type === 'directory' ? 0o755 : 0o644 }
    if (type === 'file') pack.entry(header, Buffer.from(e.body ?? ''))
    else pack.entry(header)
  }
  pack.finalize()
  return buffer(pack as unknown as AsyncIterable<Buffer>)
}

async function entries(tarball: Buffer): Promise<Map<string, { type: string; body: Buffer }>> {
  const out = new Map<string, { type: string; body: Buffer }>()
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    buffer(stream).then((body) => {
      out.set(header.name, { type: header.type!, body })
      next()
    }, next)
  })
  const done = new Promise((resolve, reject) => extract.on('finish', resolve).on('error', reject))
  Readable.from([tarball]).pipe(extract)
  await done
  return out
}

const legacy = (over: { manifest?: unknown; config?: Entry } = {}): Entry[] => [
  { name: `${V1}/` },
  { name: `${V1}/VERSION`, body: '1.0' },
  { name: `${V1}/json`, body: JSON.stringify({ id: V1 }) },
  { name: `${V1}/layer.tar`, body: LAYER },
  over.config ?? { name: `${sha(CONFIG)}.json`, body: CONFIG },
  {
    name: 'manifest.json',
    body: JSON.stringify(
      over.manifest ?? [
        { Config: `${sha(CONFIG)}.json`, RepoTags: ['nvidia/cuda:12.2.0-base'], Layers: [`${V1}/layer.tar`] },
      ],
    ),
  },
  { name: 'repositories', body: JSON.stringify({ 'nvidia/cuda': { '12.2.0-base': V1 } }) },
]

const filtered = (tarball: Buffer, id = ID) => buffer(filterPeerArchive(Readable.from([tarball]), id))

t.test('legacy layout: RepoTags cleared, repositories dropped, everything else byte for byte', async (t) => {
  const out = await entries(await filtered(await archive(legacy())))
  t.same(
    [...out.keys()],
    [`${V1}/`, `${V1}/VERSION`, `${V1}/json`, `${V1}/layer.tar`, `${sha(CONFIG)}.json`, 'manifest.json'],
  )
  t.same(JSON.parse(out.get('manifest.json')!.body.toString()), [
    { Config: `${sha(CONFIG)}.json`, RepoTags: null, Layers: [`${V1}/layer.tar`] },
  ])
  t.ok(out.get(`${V1}/layer.tar`)!.body.equals(LAYER), 'the layer passes unchanged')
  t.ok(out.get(`${sha(CONFIG)}.json`)!.body.equals(CONFIG), 'the config passes unchanged')
})

t.test('OCI layout: the name annotations of index.json go too', async (t) => {
  const manifestBlob = JSON.stringify({ schemaVersion: 2, config: { digest: ID } })
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${sha(manifestBlob)}`,
        annotations: {
          'io.containerd.image.name': 'docker.io/nvidia/cuda:12.2.0-base',
          'org.opencontainers.image.ref.name': '12.2.0-base',
          'org.example.kept': 'yes',
        },
      },
    ],
  }
  const out = await entries(
    await filtered(
      await archive([
        { name: 'blobs/' },
        { name: 'blobs/sha256/' },
        { name: `blobs/sha256/${sha(CONFIG)}`, body: CONFIG },
        { name: `blobs/sha256/${sha(LAYER)}`, body: LAYER },
        { name: `blobs/sha256/${sha(manifestBlob)}`, body: manifestBlob },
        { name: 'index.json', body: JSON.stringify(index) },
        {
          name: 'manifest.json',
          body: JSON.stringify([
            { Config: `blobs/sha256/${sha(CONFIG)}`, RepoTags: ['nvidia/cuda:12.2.0-base'], Layers: [] },
          ]),
        },
        { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
        { name: 'repositories', body: '{"nvidia/cuda":{"12.2.0-base":"x"}}' },
      ]),
    ),
  )
  t.notOk(out.has('repositories'))
  t.ok(out.has('oci-layout'))
  t.same(JSON.parse(out.get('index.json')!.body.toString()).manifests[0].annotations, { 'org.example.kept': 'yes' })
  t.equal(JSON.parse(out.get('manifest.json')!.body.toString())[0].RepoTags, null)
})

t.test('refused before its end: another image, two images, no manifest, a linked config or manifest', async (t) => {
  const other = Buffer.from('{"os":"linux","malicious":true}')
  await t.rejects(
    filtered(await archive(legacy({ config: { name: `${sha(CONFIG)}.json`, body: other } }))),
    new RegExp(`its image is sha256:${sha(other)}, not ${ID}`),
    'a config that is not the expected image, whatever its file is called',
  )
  await t.rejects(
    filtered(
      await archive(
        legacy({
          manifest: [
            { Config: `${sha(CONFIG)}.json`, RepoTags: null, Layers: [] },
            { Config: `${sha(CONFIG)}.json`, RepoTags: null, Layers: [] },
          ],
        }),
      ),
    ),
    /lists 2 images, not one/,
  )
  await t.rejects(filtered(await archive(legacy().filter((e) => e.name !== 'manifest.json'))), /no manifest\.json/)
  await t.rejects(
    filtered(
      await archive([
        { name: 'evil.json', body: other },
        { name: `${sha(CONFIG)}.json`, type: 'symlink', linkname: 'evil.json' },
        ...legacy().slice(5),
      ]),
    ),
    /reached through a link/,
  )
  await t.rejects(
    filtered(await archive([...legacy().slice(0, 5), { name: 'manifest.json', type: 'symlink', linkname: 'x' }])),
    /manifest\.json is not a regular file/,
  )
  await t.rejects(filtered(Buffer.from('not a tar archive at all, not even close'.repeat(20))), /refused/)
})

t.test('refused: names written through a linked directory, or a directory turned into a link', async (t) => {
  const evilManifest = JSON.stringify([{ Config: `${sha(CONFIG)}.json`, RepoTags: ['victim/app:1'], Layers: [] }])
  await t.rejects(
    filtered(
      await archive([
        ...legacy(),
        { name: 'd', type: 'symlink', linkname: '.' },
        { name: 'd/manifest.json', body: evilManifest },
      ]),
    ),
    /lies under the link d/,
    'd -> . then d/manifest.json would replace the manifest read',
  )
  await t.rejects(
    filtered(await archive([{ name: 'd/x', body: 'x' }, { name: 'd', type: 'symlink', linkname: '.' }, ...legacy()])),
    /turns a directory into a link/,
  )
})

t.test('refused: a pax header larger than a small entry, before it is held whole', async (t) => {
  const pack = tar.pack()
  pack.entry({ name: 'PaxHeader/x', type: 'pax-header', size: 8 * 1024 * 1024 }, Buffer.alloc(8 * 1024 * 1024, 'a'))
  pack.finalize()
  const tarball = await buffer(pack)
  await t.rejects(filtered(Buffer.concat([tarball, await archive(legacy())])), /a tar header of 8388608 bytes/)
})

t.test('a manifest.json path written another way is still the manifest', async (t) => {
  const entriesDotted = legacy().map((e) => (e.name === 'manifest.json' ? { ...e, name: './manifest.json' } : e))
  const out = await entries(await filtered(await archive(entriesDotted)))
  t.equal(JSON.parse(out.get('./manifest.json')!.body.toString())[0].RepoTags, null)
  t.equal(archivePath('./a//b/../c/'), 'a/c')
  t.equal(archivePath('/x/../../y'), 'y', 'rooted at the unpack directory, as dockerd resolves it')
  t.equal(archivePath('../y'), 'y')
  t.equal(archivePath('./'), null)
  const rooted = await entries(await filtered(await archive([{ name: './' }, ...legacy()])))
  t.ok(rooted.has('./'), 'the unpack directory itself passes')
})

t.test('it streams: layer bytes come out before the archive has ended', async (t) => {
  const whole = await archive(legacy())
  const layerAt = whole.indexOf(LAYER)
  const input = new PassThrough()
  const out = filterPeerArchive(input, ID)
  const got: Buffer[] = []
  let outBytes = 0
  let reached: () => void
  const halfLayerOut = new Promise<void>((r) => (reached = r))
  out.on('data', (c: Buffer) => {
    got.push(c)
    outBytes += c.length
    if (outBytes >= layerAt + LAYER.length / 2) reached()
  })
  const ended = new Promise((r) => out.once('end', r))
  // everything up to the middle of the layer; its first half must come out before the rest goes in
  input.write(whole.subarray(0, layerAt + LAYER.length / 2))
  await halfLayerOut
  t.pass('half the layer came out while the other half was not yet sent')
  input.end(whole.subarray(layerAt + LAYER.length / 2))
  await ended
  t.ok((await entries(Buffer.concat(got))).get(`${V1}/layer.tar`)!.body.equals(LAYER), 'and all of it is intact')
})

t.test('a source that fails mid-stream fails the output with its error', async (t) => {
  const whole = await archive(legacy())
  const input = new PassThrough()
  const out = filterPeerArchive(input, ID)
  input.write(whole.subarray(0, whole.indexOf(LAYER) + 100))
  setImmediate(() => input.destroy(new Error('peer connection reset')))
  await t.rejects(buffer(out), /peer connection reset/)
})

t.test('nothing is read before the reader reads; a failure before then reaches it when it does', async (t) => {
  const input = new PassThrough()
  const out = filterPeerArchive(input, ID)
  input.write(await archive(legacy()))
  await new Promise((r) => setImmediate(r))
  t.equal(input.readableLength > 0, true, 'the archive waits unread')
  input.destroy(new Error('peer went away early'))
  await new Promise((r) => setImmediate(r))
  // the reader arrives only now, as a runtime that prepares its request first does
  await t.rejects(buffer(out), /peer went away early/)
})

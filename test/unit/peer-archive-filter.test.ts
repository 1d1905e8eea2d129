// The filter a peer's archive passes on its way into `docker load`, over archives laid out as
// `docker save` writes them: the legacy layout (dockerd 20.10–24: <v1 id>/layer.tar, <config>.json,
// manifest.json, repositories) and the OCI one (dockerd 25+: blobs/sha256/…, index.json, oci-layout).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import tar from 'tar-stream'
import { archivePath, filterPeerArchive, rebuiltHeader } from '../../src/peers/archive-filter.js'

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

t.test('a manifest.json path written another way is still the manifest, written plainly', async (t) => {
  const entriesDotted = legacy().map((e) => (e.name === 'manifest.json' ? { ...e, name: './/manifest.json' } : e))
  const out = await entries(await filtered(await archive(entriesDotted)))
  t.equal(JSON.parse(out.get('manifest.json')!.body.toString())[0].RepoTags, null)
  t.equal(archivePath('./a//b/./c/'), 'a/b/c')
  t.equal(archivePath('./'), null)
  t.throws(() => archivePath('/x/y'), /absolute name/)
  t.throws(() => archivePath('a/../../y'), /\.\. element/)
  t.throws(() => archivePath('../y'), /\.\. element/)
  t.throws(() => archivePath('a\nb'), /control character/)
  const rooted = await entries(await filtered(await archive([{ name: './' }, ...legacy()])))
  t.notOk(rooted.has('./'), 'the unpack directory itself is not written')
  t.ok(rooted.has('manifest.json'))
})

/** an archive whose entries carry the header fields and pax records given, as a hostile peer writes them */
async function rawArchive(entries: (tar.Headers & { pax?: Record<string, string>; body?: Buffer | string })[]) {
  const pack = tar.pack()
  for (const { body, ...header } of entries)
    pack.entry(header, body === undefined && header.type !== 'file' ? undefined : Buffer.from(body ?? ''))
  pack.finalize()
  return buffer(pack as unknown as AsyncIterable<Buffer>)
}

/** one pax record, its length counted as the format wants */
function paxRecord(key: string, value: string): string {
  const line = ` ${key}=${value}\n`
  let length = line.length + 1
  while (String(length).length + line.length !== length) length = String(length).length + line.length
  return `${length}${line}`
}

/** a global pax header block (typeflag g), which tar-stream reads but does not write */
async function globalPax(records: string): Promise<Buffer> {
  const block = await rawArchive([{ name: 'pax_global_header', type: 'pax-header', body: records }])
  block[156] = 'g'.charCodeAt(0)
  block.fill(' ', 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += block[i]
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return block.subarray(0, block.length - 1024)
}

t.test('refused: pax records this host does not read, named in the error', async (t) => {
  const evilManifest = JSON.stringify([{ Config: `${sha(CONFIG)}.json`, RepoTags: ['victim:1'], Layers: [] }])
  for (const key of [
    'GNU.sparse.name',
    'GNU.sparse.major',
    'SCHILY.xattr.security.capability',
    'LIBARCHIVE.xattr.user.x',
  ]) {
    const hostile = await rawArchive([
      { name: 'innocent.json', type: 'file', pax: { [key]: 'manifest.json' }, body: evilManifest },
    ])
    await t.rejects(
      filtered(Buffer.concat([hostile.subarray(0, hostile.length - 1024), await archive(legacy())])),
      new RegExp(`carries the pax record ${key.replace(/\./g, '\\.')}`),
      key,
    )
  }
  // a global header applies to every entry after it
  const global = await globalPax(paxRecord('GNU.sparse.name', 'manifest.json'))
  await t.rejects(
    filtered(Buffer.concat([global, await archive(legacy())])),
    /carries the pax record GNU\.sparse\.name/,
  )
  // the records tar-stream reads into the fields kept are taken, and not written again
  const plain = await rawArchive([
    { name: 'x', type: 'file', pax: { uname: 'peer', mtime: '1700000000.5' }, body: 'x' },
  ])
  const out = await filtered(Buffer.concat([plain.subarray(0, plain.length - 1024), await archive(legacy())]))
  t.ok((await entries(out)).has('x'))
})

t.test('refused: devices, fifos, hard links, absolute names, .. elements, links leaving the archive', async (t) => {
  const cases: [tar.Headers, RegExp][] = [
    [{ name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }, /is a block-device/],
    [{ name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1 }, /is a character-device/],
    [{ name: 'fifo', type: 'fifo' }, /is a fifo/],
    [{ name: 'hard', type: 'link', linkname: 'manifest.json' }, /is a link/],
    [{ name: '/etc/cron.d/x', type: 'file' }, /absolute name/],
    [{ name: 'a/../../x', type: 'file' }, /\.\. element/],
    [{ name: 'up', type: 'symlink', linkname: '../../etc/passwd' }, /links outside the archive/],
    [{ name: 'abs', type: 'symlink', linkname: '/etc/passwd' }, /links to "\/etc\/passwd"/],
  ]
  for (const [header, reason] of cases) {
    const hostile = await rawArchive([header])
    await t.rejects(
      filtered(Buffer.concat([await archive(legacy()).then((b) => b.subarray(0, b.length - 1024)), hostile])),
      reason,
      `${header.type} ${header.name}`,
    )
  }
})

t.test('rebuilt headers: owner 0:0, permission bits only, no pax records of the peer', async (t) => {
  const hostile = await rawArchive([
    { name: 'suid', type: 'file', mode: 0o4755, uid: 1000, gid: 1000, uname: 'u', gname: 'g', body: 'x' },
    { name: 'dir', type: 'directory', mode: 0o3777 },
    { name: 'dir/padded', type: 'file', pax: { size: '1', uname: 'peer' }, body: 'y' },
  ])
  const input = Buffer.concat([hostile.subarray(0, hostile.length - 1024), await archive(legacy())])
  const out = await filtered(input)
  const headers: (tar.Headers & { pax?: unknown })[] = []
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    headers.push(header)
    stream.resume()
    stream.on('end', next)
  })
  await new Promise((resolve, reject) => extract.on('finish', resolve).on('error', reject).end(out))
  const byName = new Map(headers.map((h) => [h.name, h]))
  t.equal(byName.get('suid')!.mode, 0o755, 'no setuid bit')
  t.equal(byName.get('dir/')!.mode, 0o777, 'no setgid or sticky bit')
  t.ok(
    headers.every((h) => h.uid === 0 && h.gid === 0 && !h.uname && !h.gname),
    'owner 0:0, no names',
  )
  t.ok(
    headers.every((h) => h.pax === undefined),
    'no pax record written',
  )
  t.equal(
    rebuiltHeader('big', { type: 'file' }, 9 * 1024 ** 3).pax?.size,
    String(9 * 1024 ** 3),
    'over 8 GiB: pax size',
  )
  t.equal(rebuiltHeader('small', { type: 'file' }, 1024).pax, undefined)
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

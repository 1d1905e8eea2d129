// Archives a hostile peer writes to move names on the fetching host, proved against the real
// consumer: a private dockerd, whose Go archive/tar honours pax and GNU records that tar-stream does
// not. Each archive first goes raw into `docker load`, to show the engine would apply what it hides;
// then through `fetchFromPeer`, which must refuse it with nothing named, replaced or left behind.
// Last, the engine is made to apply a name after all (as a filter that let one through would), and
// the fetch must put the name back, remove what the load brought, and report a breach.
import t from 'tap'
import { createReadStream, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import tar from 'tar-stream'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { fetchFromPeer, PeerBreachError } from '../../src/prewarm/peer-fetch.js'
import { parseImageRef } from '../../src/registry/reference.js'

const MiB = 1024 * 1024

type RawEntry = { header: tar.Headers & { pax?: Record<string, string> }; body: Buffer }

/** every entry of a tar file, headers as read, bodies whole (the archives here are a few MiB) */
async function readEntries(file: string): Promise<RawEntry[]> {
  const out: RawEntry[] = []
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    buffer(stream).then((body) => {
      out.push({ header, body })
      next()
    }, next)
  })
  const done = new Promise((resolve, reject) => extract.on('finish', resolve).on('error', reject))
  createReadStream(file).pipe(extract)
  await done
  return out
}

/** a tar of `entries`, each header (and its pax records) written as given */
async function writeArchive(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  for (const { header, body } of entries)
    pack.entry({ ...header, size: body.length }, header.type === 'file' ? body : undefined)
  pack.finalize()
  return buffer(pack as unknown as AsyncIterable<Buffer>)
}

const file = (name: string, body: Buffer | string, pax?: Record<string, string>): RawEntry => ({
  header: { name, type: 'file', mode: 0o644, ...(pax ? { pax } : {}) },
  body: Buffer.from(body),
})

/** the ids dockerd holds and the id each name points to */
function names(d: PrivateDockerd): Map<string, string> {
  const lines = d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']).trim()
  return new Map(
    lines
      .split('\n')
      .filter((l) => l && !l.startsWith('<none>'))
      .map((l) => l.split(' ') as [string, string]),
  )
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('hostile archives move no name on the fetching host', async (t) => {
    const d = await startDockerd(t, { diskMiB: 300 })
    const dir = testDir(t)
    // the image wanted, and the attacker's, each saved by id: `docker save` writes no names then
    const wantedId = makeImage(d, { ref: 'fleet/model:1', sizeBytes: 2 * MiB })
    const attackerId = makeImage(d, { ref: 'attacker/payload:1', sizeBytes: 1 * MiB })
    d.docker(['save', '-o', dir.file('wanted.tar', ''), wantedId])
    d.docker(['save', '-o', dir.file('attacker.tar', ''), attackerId])
    d.docker(['rmi', 'fleet/model:1', 'attacker/payload:1'])
    // ... and the host holds its own victim/app:1, which the attacker wants to point at its image
    const victimId = makeImage(d, { ref: 'victim/app:1', sizeBytes: 1 * MiB })

    const wanted = await readEntries(join(dir.path, 'wanted.tar'))
    const attackerAll = await readEntries(join(dir.path, 'attacker.tar'))
    const attacker = attackerAll.filter((e) => !['manifest.json', 'repositories'].includes(e.header.name))
    const attackerManifest = JSON.parse(
      attackerAll.find((e) => e.header.name === 'manifest.json')!.body.toString(),
    ) as { Config: string; Layers: string[] }[]
    const evilManifest = JSON.stringify([{ ...attackerManifest[0], RepoTags: ['victim/app:1'] }])

    // 1. GNU sparse 0.1 records rename an innocent-looking entry to manifest.json, after the real one
    const sparse = await writeArchive([
      ...wanted,
      ...attacker,
      file('notes.txt', evilManifest, {
        'GNU.sparse.major': '0',
        'GNU.sparse.minor': '1',
        'GNU.sparse.name': 'manifest.json',
        'GNU.sparse.numblocks': '1',
        'GNU.sparse.map': `0,${Buffer.byteLength(evilManifest)}`,
        'GNU.sparse.size': String(Buffer.byteLength(evilManifest)),
      }),
    ])
    writeFileSync(join(dir.path, 'sparse.tar'), sparse)
    // 2. a hard link, and 3. a character device, beside the wanted image
    const withLink = await writeArchive([
      ...wanted,
      { header: { name: 'evil', type: 'link', linkname: 'manifest.json' }, body: Buffer.alloc(0) },
    ])
    writeFileSync(join(dir.path, 'hardlink.tar'), withLink)
    const withDevice = await writeArchive([
      ...wanted,
      { header: { name: 'mem', type: 'character-device', devmajor: 1, devminor: 1 }, body: Buffer.alloc(0) },
    ])
    writeFileSync(join(dir.path, 'device.tar'), withDevice)

    // The control: dockerd itself honours the sparse name and applies the hidden manifest's name.
    const raw = d.docker(['load', '-i', join(dir.path, 'sparse.tar')])
    t.match(raw, /Loaded image: victim\/app:1/, 'raw into docker load, the hidden manifest names victim/app:1')
    t.equal(names(d).get('victim/app:1'), attackerId, "... on the attacker's image")
    d.docker(['tag', victimId, 'victim/app:1'])
    d.docker(['rmi', attackerId])
    t.equal(names(d).get('victim/app:1'), victimId, 'the host is put back for the fetches below')

    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar' })
      createReadStream(join(dir.path, `${req.url!.slice(1)}.tar`)).pipe(res)
    })
    const port = await freePort()
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
    t.teardown(() => {
      server.closeAllConnections()
      server.close()
    })
    const runtime = new DockerRuntime(
      parseConfig(agentConfigSchema, { stateDir: join(dir.path, 'state'), docker: { socket: d.socket } }),
    )
    const fetchFrom = (name: string, over: Partial<Parameters<typeof fetchFromPeer>[1]> = {}) =>
      fetchFromPeer(
        { host: `peer-${name}`, url: `http://127.0.0.1:${port}/${name}`, token: 'unused' },
        {
          runtime,
          ref: parseImageRef('fleet/model:1'),
          configDigest: wantedId,
          signal: AbortSignal.timeout(120_000),
          onBytes: () => undefined,
          allowLoopback: true,
          ...over,
        },
      )
    const before = names(d)
    const cases: [string, RegExp][] = [
      ['sparse', /peer archive refused: entry "notes\.txt" carries the pax record GNU\.sparse\./],
      ['hardlink', /peer archive refused: entry "evil" is a link/],
      ['device', /peer archive refused: entry "mem" is a character-device/],
    ]
    for (const [name, reason] of cases) {
      await t.rejects(fetchFrom(name), reason, `${name}: refused`)
      t.same(names(d), before, `${name}: no name moved`)
      t.equal(await runtime.inspectImage(attackerId), null, `${name}: the attacker's image is not on the host`)
      t.equal(await runtime.inspectImage(wantedId), null, `${name}: nor anything of the refused archive`)
    }

    // The breach path: the engine applies a name after all (here by loading the raw archive in place
    // of what the filter wrote, as if the filter had let it through).
    const bypass = Object.create(runtime) as DockerRuntime
    bypass.loadImage = async (filtered: Readable, signal?: AbortSignal) => {
      filtered.pipe(new PassThrough()).resume()
      return runtime.loadImage!(createReadStream(join(dir.path, 'sparse.tar')), signal)
    }
    const breach = await fetchFrom('wanted', { runtime: bypass }).catch((err: unknown) => err)
    t.type(breach, PeerBreachError, 'a load that names an image is a breach')
    t.match(
      (breach as Error).message,
      /peer peer-wanted sent an archive that named images on this host \(victim\/app:1\)/,
    )
    t.equal(names(d).get('victim/app:1'), victimId, 'victim/app:1 is put back on its own image')
    t.equal(await runtime.inspectImage(attackerId), null, "the attacker's image the load brought is removed")
    t.notOk(names(d).has('fleet/model:1'), 'the breaching fetch names nothing')

    // and a clean archive from an honest peer still loads under the wanted name
    await fetchFrom('wanted')
    t.equal(names(d).get('fleet/model:1'), wantedId, 'an honest archive loads as before')
    t.equal(names(d).get('victim/app:1'), victimId)
  })
}

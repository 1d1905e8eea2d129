// A peer cannot name images on the host that fetches from it. Two peers serve real `docker save`
// archives whose names (manifest.json RepoTags, the `repositories` file) say victim/app:1, an image
// the fetching host already holds: one archive holds another image, the other the wanted one. The
// first is refused, the second loaded under the wanted name; victim/app:1 keeps its own id
// throughout, and the other image never lands on the host.
import t from 'tap'
import { createReadStream } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { fetchFromPeer } from '../../src/prewarm/peer-fetch.js'
import { parseImageRef } from '../../src/registry/reference.js'

const MiB = 1024 * 1024

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('names an archive carries never reach the fetching host', async (t) => {
    const d = await startDockerd(t, { diskMiB: 300 })
    const dir = testDir(t)
    const inspectId = (ref: string) => d.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()
    // Two archives saved under the name victim/app:1: one of the wanted image, one of another.
    const wantedId = makeImage(d, { ref: 'fleet/model:1', sizeBytes: 4 * MiB })
    const otherId = makeImage(d, { ref: 'other/thing:1', sizeBytes: 1 * MiB })
    const save = (id: string, file: string) => {
      d.docker(['tag', id, 'victim/app:1'])
      d.docker(['save', '-o', dir.file(file, ''), 'victim/app:1'])
      d.docker(['rmi', 'victim/app:1'])
    }
    save(wantedId, 'renaming.tar')
    save(otherId, 'impostor.tar')
    d.docker(['rmi', 'fleet/model:1', 'other/thing:1'])
    t.same(d.docker(['images', '-q', '--no-trunc']).trim(), '', 'both images are gone from the host again')
    // ... and the host holds its own victim/app:1
    const victimId = makeImage(d, { ref: 'victim/app:1', sizeBytes: 1 * MiB })

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
    const fetchFrom = (name: string) =>
      fetchFromPeer(
        { host: name, url: `http://127.0.0.1:${port}/${name}`, token: 'unused' },
        {
          runtime,
          ref: parseImageRef('fleet/model:1'),
          configDigest: wantedId,
          signal: AbortSignal.timeout(120_000),
          onBytes: () => undefined,
          allowLoopback: true,
        },
      )

    await t.rejects(fetchFrom('impostor'), new RegExp(`its image is ${otherId}, not ${wantedId}`))
    t.equal(inspectId('victim/app:1'), victimId, 'the refused archive moved no name')
    t.equal(await runtime.inspectImage(otherId), null, 'nor was its image loaded')

    const bytes = await fetchFrom('renaming')
    t.ok(bytes > 4 * MiB, 'the archive was read')
    t.equal(inspectId('fleet/model:1'), wantedId, 'the wanted image is loaded under the wanted name')
    t.equal(inspectId('victim/app:1'), victimId, "the archive's name did not move victim/app:1")
    t.same((await runtime.inspectImage(wantedId))?.repoTags, ['fleet/model:1'], 'and the loaded image has no other')
  })
}

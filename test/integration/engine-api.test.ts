// The Engine API client against a private dockerd: the negotiated version prefix, the daemon's
// refusals in the same words the docker CLI prints, JSON filters in the query, and image names
// with a registry port and a path routed as names.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { makeRunnableImage } from '../support/docker-images.js'
import { runtimeFor } from '../support/runtime.js'
import { negotiateApiVersion } from '../../src/runtime/docker-connection.js'
import { EngineApiError, pathPart } from '../../src/runtime/engine-api.js'
import { messageOf, statusOf } from '../../src/runtime/remove-image.js'

/** what the docker CLI prints after "Error response from daemon: " for the same request */
function cliRefusal(dockerd: PrivateDockerd, args: string[]): string {
  const r = spawnSync('docker', ['-H', dockerd.host, ...args], { encoding: 'utf8' })
  if (r.status === 0) throw new Error(`docker ${args.join(' ')} succeeded`)
  return r.stderr.trim().replace(/^Error response from daemon: /, '')
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('the Engine API client on a private dockerd', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const runtime = runtimeFor(dockerd)
    const identity = await runtime.connection.connect()
    const serverApi = dockerd.docker(['version', '--format', '{{.Server.APIVersion}}']).trim()
    t.equal(identity.apiVersion, negotiateApiVersion(serverApi), 'the lower of the daemon and the client')
    const api = await runtime.connection.client()
    t.equal(api.apiVersion, identity.apiVersion, 'every later call goes under /vX.Y')

    const used = makeRunnableImage(dockerd, 'team/used:1', 1024)
    const idle = makeRunnableImage(dockerd, 'team/idle:1', 1024)
    const container = dockerd.docker(['create', 'team/used:1']).trim()

    const missing = await api
      .json({ method: 'DELETE', path: `/images/${pathPart('nope/missing:1')}` })
      .catch((e: unknown) => e)
    t.type(missing, EngineApiError)
    t.equal(statusOf(missing), 404)
    t.equal(messageOf(missing), cliRefusal(dockerd, ['rmi', 'nope/missing:1']), "the daemon's words, as the CLI shows")

    const conflict = await api
      .json({ method: 'DELETE', path: `/images/${pathPart('team/used:1')}`, query: { force: false } })
      .catch((e: unknown) => e)
    t.equal(statusOf(conflict), 409)
    t.equal(messageOf(conflict), cliRefusal(dockerd, ['rmi', 'team/used:1']))
    t.match(messageOf(conflict), /container [0-9a-f]{12} is using its referenced image/)

    const users = async (id: string) =>
      (
        await api.json<{ Id: string }[]>({
          path: '/containers/json',
          query: { all: true, filters: { ancestor: [id] } },
        })
      ).map((c) => c.Id)
    t.same(await users(used), [container], 'the ancestor filter, sent as JSON, finds the container')
    t.same(await users(idle), [], 'and only where there is one')

    const id = makeImage(dockerd, { ref: '127.0.0.1:5000/team/deep/name:2.0-rc1', sizeBytes: 1024 })
    const details = await runtime.inspectImage('127.0.0.1:5000/team/deep/name:2.0-rc1')
    t.equal(details?.id, id, 'a name with a registry port and a path is routed as one name')
    const [digestless] = (await api.json<{ RepoTags: string[] }>({ path: `/images/${pathPart(id)}/json` })).RepoTags
    t.equal(digestless, '127.0.0.1:5000/team/deep/name:2.0-rc1')
    // Unescaped, the ? would end the path and this would remove team/idle:1.
    const smuggled = await api
      .json({ method: 'DELETE', path: `/images/${pathPart('team/idle:1?noprune=true')}` })
      .catch((e: unknown) => e)
    t.type(smuggled, EngineApiError, 'a query in a name stays in the name')
    t.ok(dockerd.docker(['image', 'inspect', 'team/idle:1']), 'and removes nothing')
  })
}

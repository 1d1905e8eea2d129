// dockerode as the runtime drives it, against a private dockerd: the negotiated version prefix,
// the daemon's refusals in the same words the docker CLI prints, JSON filters in the query, image
// names with a registry port and a path routed as names, and DOCKER_HOST read when no socket is
// configured.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../harness/ports.js'
import { makeTestCa } from '../harness/tls.js'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { makeRunnableImage } from '../support/docker-images.js'
import { runtimeFor } from '../support/runtime.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { negotiateApiVersion } from '../../src/runtime/docker-connection.js'
import { messageOf, pathPart, statusOf } from '../../src/runtime/docker-api.js'
import { DockerRuntime } from '../../src/runtime/docker.js'

/** what the docker CLI prints after "Error response from daemon: " for the same request */
function cliRefusal(dockerd: PrivateDockerd, args: string[]): string {
  const r = spawnSync('docker', ['-H', dockerd.host, ...args], { encoding: 'utf8' })
  if (r.status === 0) throw new Error(`docker ${args.join(' ')} succeeded`)
  return r.stderr.trim().replace(/^Error response from daemon: /, '')
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('dockerode on a private dockerd', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const runtime = runtimeFor(dockerd)
    const identity = await runtime.connection.connect()
    const serverApi = dockerd.docker(['version', '--format', '{{.Server.APIVersion}}']).trim()
    t.equal(identity.apiVersion, negotiateApiVersion(serverApi), 'the lower of the daemon and the client')
    const api = await runtime.connection.client()
    t.equal(api.apiVersion, identity.apiVersion, 'every later call goes under /vX.Y')
    const { docker } = api

    const used = makeRunnableImage(dockerd, 'team/used:1', 1024)
    const idle = makeRunnableImage(dockerd, 'team/idle:1', 1024)
    const container = dockerd.docker(['create', 'team/used:1']).trim()

    const missing = await docker
      .getImage(pathPart('nope/missing:1'))
      .remove()
      .catch((e: unknown) => e)
    t.equal(statusOf(missing), 404)
    t.equal(messageOf(missing), cliRefusal(dockerd, ['rmi', 'nope/missing:1']), "the daemon's words, as the CLI shows")

    const conflict = await docker
      .getImage(pathPart('team/used:1'))
      .remove({ force: false })
      .catch((e: unknown) => e)
    t.equal(statusOf(conflict), 409)
    t.equal(messageOf(conflict), cliRefusal(dockerd, ['rmi', 'team/used:1']))
    t.match(messageOf(conflict), /container [0-9a-f]{12} is using its referenced image/)

    const users = async (id: string) =>
      (await docker.listContainers({ all: true, filters: { ancestor: [id] } })).map((c) => c.Id)
    t.same(await users(used), [container], 'the ancestor filter, sent as JSON, finds the container')
    t.same(await users(idle), [], 'and only where there is one')

    const id = makeImage(dockerd, { ref: '127.0.0.1:5000/team/deep/name:2.0-rc1', sizeBytes: 1024 })
    const details = await runtime.inspectImage('127.0.0.1:5000/team/deep/name:2.0-rc1')
    t.equal(details?.id, id, 'a name with a registry port and a path is routed as one name')
    t.same((await api.inspectImage(id)).RepoTags, ['127.0.0.1:5000/team/deep/name:2.0-rc1'])
    // Unescaped, the ? would end the path and this would remove team/idle:1.
    const smuggled = await docker
      .getImage(pathPart('team/idle:1?noprune=true'))
      .remove()
      .catch((e: unknown) => e)
    t.ok([400, 404].includes(statusOf(smuggled)!), `a query in a name stays in the name (${messageOf(smuggled)})`)
    t.ok(dockerd.docker(['image', 'inspect', 'team/idle:1']), 'and removes nothing')
  })

  t.test('DOCKER_HOST=unix://… reaches Docker when docker.socket is not set', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 128 })
    const id = makeImage(dockerd, { ref: 'env/host:1', sizeBytes: 1024 })
    const saved = process.env.DOCKER_HOST
    t.teardown(() => {
      if (saved === undefined) delete process.env.DOCKER_HOST
      else process.env.DOCKER_HOST = saved
    })
    process.env.DOCKER_HOST = `unix://${dockerd.socket}`
    const config = parseConfig(agentConfigSchema, { stateDir: t.testdir() })
    t.equal(config.docker.socket, null, 'no socket in the config')
    const runtime = new DockerRuntime(config)
    const { images } = await runtime.listImagesWithContainers()
    t.ok(
      images.some((i) => i.id === id),
      'the image of the dockerd DOCKER_HOST names is listed',
    )
  })

  t.test('DOCKER_HOST=tcp://… with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them', async (t) => {
    const dir = t.testdir({ certs: {}, state: {} })
    const certs = join(dir, 'certs')
    const ca = makeTestCa(certs)
    const server = ca.issue('server', '/CN=dockerd', 'IP:127.0.0.1')
    const client = ca.issue('cert', '/CN=gpuhost', 'DNS:gpuhost')
    copyFileSync(client.keyFile, join(certs, 'key.pem')) // DOCKER_CERT_PATH holds ca.pem, cert.pem, key.pem
    const port = await freePort()
    const tls = ['--tlsverify', '--tlscacert', ca.caFile, '--tlscert', server.certFile, '--tlskey', server.keyFile]
    const dockerd = await startDockerd(t, { diskMiB: 128, extraArgs: [...tls, '-H', `tcp://127.0.0.1:${port}`] })
    const id = makeImage(dockerd, { ref: 'env/tls:1', sizeBytes: 1024 })
    const saved = { ...process.env }
    t.teardown(() => {
      process.env = saved
    })
    const listed = async () => {
      const runtime = new DockerRuntime(parseConfig(agentConfigSchema, { stateDir: join(dir, 'state') }))
      return (await runtime.listImagesWithContainers()).images.map((i) => i.id)
    }
    process.env.DOCKER_HOST = `tcp://127.0.0.1:${port}`
    process.env.DOCKER_TLS_VERIFY = '1'
    process.env.DOCKER_CERT_PATH = certs
    t.ok((await listed()).includes(id), 'over TLS with the client certificate: the image is listed')
    delete process.env.DOCKER_TLS_VERIFY
    delete process.env.DOCKER_CERT_PATH
    await t.rejects(listed(), /HTTP request to an HTTPS server|unreachable/, 'plain HTTP to the TLS port is refused')
  })
}

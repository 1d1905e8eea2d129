// What the runtime adds around dockerode (names as path parts, the daemon's words out of
// docker-modem's errors, dockerode's options from the config), and how a daemon that is away
// reads: a missing socket, a dead daemon's socket left behind, a daemon that accepts and never
// answers, and one behind a proxy that answers text.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import {
  DockerApi,
  dockerAddress,
  dockerodeOptions,
  isConnectionError,
  messageOf,
  pathPart,
  statusOf,
} from '../../src/runtime/docker-api.js'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { RuntimeUnavailableError } from '../../src/runtime/runtime.js'

t.test('names stay routable but cannot reach another route', async (t) => {
  const digest = 'sha256:' + 'a'.repeat(64)
  t.equal(pathPart(`reg.local:5000/team/cuda@${digest}`), `reg.local:5000/team/cuda@${digest}`)
  t.equal(pathPart('cuda:12.2'), 'cuda:12.2')
  t.equal(pathPart('a?force=true'), 'a%3Fforce%3Dtrue', 'a query cannot be smuggled in a name')
  t.equal(pathPart('a#b c%'), 'a%23b%20c%25')
})

/** where a dockerode client will connect, as its modem keeps it (untyped in @types/docker-modem) */
type ModemTarget = { socketPath?: string; host?: string; port?: string | number; timeout?: number }
const target = (options: Dockerode.DockerOptions) => new Dockerode(options).modem as unknown as ModemTarget

t.test('a configured socket wins over DOCKER_HOST; without one dockerode reads the environment', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => {
    process.env = saved
  })
  process.env.DOCKER_HOST = 'tcp://127.0.0.1:1'
  process.env.DOCKER_CLIENT_TIMEOUT = '5'
  const named = target(dockerodeOptions('/run/x/docker.sock'))
  t.equal(named.socketPath, '/run/x/docker.sock')
  t.notOk(named.host, 'DOCKER_HOST is not used beside a configured socket')
  t.notOk(named.timeout, 'no client-wide idle timeout: the event stream is silent for hours')
  const fromEnv = target(dockerodeOptions(null))
  t.equal(fromEnv.host, '127.0.0.1')
  t.equal(String(fromEnv.port), '1')
  t.notOk(fromEnv.timeout)
  process.env.DOCKER_HOST = 'unix:///run/y/docker.sock'
  t.equal(target(dockerodeOptions(null)).socketPath, '/run/y/docker.sock')
  t.equal(dockerAddress(null), 'unix:///run/y/docker.sock', 'messages say where it was looked for')
  t.equal(dockerAddress('/run/x/docker.sock'), '/run/x/docker.sock')
  delete process.env.DOCKER_HOST
  t.equal(dockerAddress(null), '/var/run/docker.sock')
})

/** a socket path in a directory of its own: unix socket paths must stay under 108 bytes */
function socketPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-engine-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'docker.sock')
}

function runtimeOn(socket: string, dir: string): DockerRuntime {
  return new DockerRuntime({
    docker: {
      socket,
      timeoutSeconds: 1,
      refreshIntervalSeconds: 300,
      pingIntervalSeconds: 10,
      pingTimeoutSeconds: 1,
    },
    stateDir: dir,
  })
}

const apiOn = (socket: string, timeoutMs: number) => new DockerApi(new Dockerode({ socketPath: socket }), timeoutMs)

t.test("a refusal keeps its status and the daemon's message; a proxy's text answer too", async (t) => {
  const socket = socketPath(t)
  const said = 'conflict: unable to remove repository reference "a:1" (must force) - container 1a2b is using it'
  const server = createHttpServer((req, res) => {
    if (req.method === 'DELETE') {
      res.writeHead(409, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: said }) + '\n')
    } else res.writeHead(502, { 'Content-Type': 'text/plain' }).end('Bad Gateway\n')
  })
  await new Promise<void>((resolve) => server.listen(socket, resolve))
  t.teardown(() => server.close())
  const api = apiOn(socket, 1000)
  const conflict = await api.docker
    .getImage('a:1')
    .remove()
    .catch((e: unknown) => e)
  t.equal(statusOf(conflict), 409)
  t.equal(messageOf(conflict), said)
  t.notOk(isConnectionError(conflict), 'a refusal is an answer, not a lost daemon')
  const text = await api.inspectImage('a:1').catch((e: unknown) => e)
  t.equal(statusOf(text), 502)
  t.equal(messageOf(text), 'Bad Gateway', "docker-modem's wrapping taken off")
  t.notOk(isConnectionError(text))
})

t.test('a missing socket reads as Docker unreachable', async (t) => {
  const socket = socketPath(t)
  const err = await apiOn(socket, 1000)
    .signalled.ping({})
    .catch((e: unknown) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ENOENT')
  t.ok(isConnectionError(err))
  const runtime = runtimeOn(socket, t.testdir())
  await t.rejects(runtime.listImagesWithContainers(), RuntimeUnavailableError)
  await t.rejects(runtime.ping(), /Docker is unreachable: connect ENOENT/)
  t.equal(runtime.health().reachable, false)
})

t.test("a dead daemon's socket (nothing listens) reads as Docker unreachable", async (t) => {
  const socket = socketPath(t)
  // A process that dies by SIGKILL while listening leaves its socket file behind, as a crashed dockerd does.
  const listen = `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 9))`
  spawnSync(process.execPath, ['-e', listen])
  t.ok(existsSync(socket), 'the socket file is left')
  const err = await apiOn(socket, 1000)
    .signalled.ping({})
    .catch((e: unknown) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED')
  const runtime = runtimeOn(socket, t.testdir())
  await t.rejects(runtime.inspectImage('cuda:12'), { name: 'RuntimeUnavailableError', message: /ECONNREFUSED/ })
  t.equal(runtime.health().reachable, false)
})

t.test('a daemon that accepts and never answers fails the call at its deadline', async (t) => {
  const socket = socketPath(t)
  const held: Socket[] = []
  const frozen = createServer((s) => held.push(s))
  await new Promise<void>((resolve) => frozen.listen(socket, resolve))
  t.teardown(() => {
    for (const s of held) s.destroy()
    frozen.close()
  })
  const api = apiOn(socket, 200)
  const err = await api.within('GET /info', (abortSignal) => api.signalled.info({ abortSignal })).catch((e) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT')
  t.match((err as Error).message, /dockerd did not answer GET \/info within 0.2 s/)
  t.ok(isConnectionError(err))
  const inspected = await api.inspectImage('cuda:12').catch((e: unknown) => e)
  t.equal((inspected as NodeJS.ErrnoException).code, 'ETIMEDOUT', 'an image inspection has the deadline too')
  const caller = AbortSignal.timeout(100)
  const aborted = await apiOn(socket, 0)
    .within('GET /_ping', (abortSignal) => api.signalled.ping({ abortSignal: abortSignal ?? caller }))
    .catch((e: unknown) => e)
  t.equal((aborted as Error).name, 'AbortError', "a call without a deadline ends with its caller's signal")
  t.notOk(isConnectionError(aborted), "and the caller's abort is not read as the daemon gone")
  const runtime = runtimeOn(socket, t.testdir())
  await t.rejects(runtime.ping(), /Docker is unreachable: no answer to a ping within 1 s/)
  await t.rejects(runtime.rootDir(), /root dir is unknown .*timeout/)
})

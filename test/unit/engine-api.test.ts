// The Engine API client's pure parts (paths, queries, the auth header, errors as the runtime reads
// them), and how a daemon that is away reads: a missing socket, a dead daemon's socket left behind,
// and a daemon that accepts and never answers.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  EngineApi,
  EngineApiError,
  engineError,
  enginePath,
  engineQuery,
  pathPart,
  registryAuthHeader,
} from '../../src/runtime/engine-api.js'
import { isConnectionError } from '../../src/runtime/docker-connection.js'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { messageOf, statusOf } from '../../src/runtime/remove-image.js'
import { RuntimeUnavailableError } from '../../src/runtime/runtime.js'

t.test('queries: filters as JSON, lists as repeated keys, nothing for undefined', async (t) => {
  t.equal(
    engineQuery({ all: true, filters: { ancestor: ['sha256:abc'] } }),
    '?all=true&filters=%7B%22ancestor%22%3A%5B%22sha256%3Aabc%22%5D%7D',
  )
  t.same(JSON.parse(new URLSearchParams(engineQuery({ filters: { type: ['image'] } })).get('filters')!), {
    type: ['image'],
  })
  t.equal(engineQuery({ since: undefined, until: null, quiet: false }), '?quiet=false')
  t.equal(engineQuery({ tag: ['a', 'b'] }), '?tag=a&tag=b')
  t.equal(engineQuery({ since: 1700000000 }), '?since=1700000000')
  t.equal(engineQuery({}), '')
  t.equal(engineQuery(), '')
})

t.test('paths carry the negotiated version, and names stay routable but cannot reach another route', async (t) => {
  t.equal(enginePath('1.43', '/images/json', { 'shared-size': true }), '/v1.43/images/json?shared-size=true')
  t.equal(enginePath(undefined, '/version'), '/version')
  const digest = 'sha256:' + 'a'.repeat(64)
  t.equal(pathPart(`reg.local:5000/team/cuda@${digest}`), `reg.local:5000/team/cuda@${digest}`)
  t.equal(pathPart('cuda:12.2'), 'cuda:12.2')
  t.equal(pathPart('a?force=true'), 'a%3Fforce%3Dtrue', 'a query cannot be smuggled in a name')
  t.equal(pathPart('a#b c%'), 'a%23b%20c%25')
})

t.test('X-Registry-Auth is the auth config as base64url JSON', async (t) => {
  const auth = { username: 'u', password: '>>>???', serveraddress: 'reg.local:5000' }
  const header = registryAuthHeader(auth)
  t.notMatch(header, /[+/]/, 'the URL-safe alphabet')
  t.equal(header.length % 4, 0, 'padded, as dockerd decodes it')
  t.match(registryAuthHeader({ username: 'u' }), /=$/)
  t.same(JSON.parse(Buffer.from(header, 'base64url').toString()), auth)
})

t.test("a refusal keeps its status and the daemon's message, as the runtime reads them", async (t) => {
  const said = 'conflict: unable to remove repository reference "a:1" (must force) - container 1a2b is using it'
  const conflict = engineError(409, JSON.stringify({ message: said }) + '\n')
  t.type(conflict, EngineApiError)
  t.equal(statusOf(conflict), 409)
  t.equal(messageOf(conflict), said)
  t.equal(conflict.message, messageOf(conflict))
  t.notOk(isConnectionError(conflict), 'a refusal is an answer, not a lost daemon')
  const text = engineError(502, 'Bad Gateway\n')
  t.equal(messageOf(text), 'Bad Gateway')
  t.equal(statusOf(text), 502)
  t.equal(messageOf(engineError(500, '')), 'HTTP 500')
  t.equal(messageOf(engineError(404, '{"other":1}')), '{"other":1}')
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

t.test('a missing socket reads as Docker unreachable', async (t) => {
  const socket = socketPath(t)
  const err = await new EngineApi(socket, 1000).json({ path: '/_ping' }).catch((e: unknown) => e)
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
  const err = await new EngineApi(socket, 1000).json({ path: '/_ping' }).catch((e: unknown) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED')
  const runtime = runtimeOn(socket, t.testdir())
  await t.rejects(runtime.inspectImage('cuda:12'), { name: 'RuntimeUnavailableError', message: /ECONNREFUSED/ })
  t.equal(runtime.health().reachable, false)
})

t.test('a daemon that accepts and never answers fails the call after the idle timeout', async (t) => {
  const socket = socketPath(t)
  const held: Socket[] = []
  const frozen = createServer((s) => held.push(s))
  await new Promise<void>((resolve) => frozen.listen(socket, resolve))
  t.teardown(() => {
    for (const s of held) s.destroy()
    frozen.close()
  })
  const api = new EngineApi(socket, 200)
  const err = await api.json({ path: '/info' }).catch((e: unknown) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT')
  t.match((err as Error).message, /dockerd sent nothing for 0.2 s/)
  t.ok(isConnectionError(err))
  const aborted = await api
    .json({ path: '/_ping', signal: AbortSignal.timeout(100), idleTimeoutMs: 0 })
    .catch((e: unknown) => e)
  t.equal((aborted as Error).name, 'AbortError', 'a call without idle timeout ends with its signal')
  const runtime = runtimeOn(socket, t.testdir())
  await t.rejects(runtime.ping(), /Docker is unreachable: no answer to a ping within 1 s/)
  await t.rejects(runtime.rootDir(), /root dir is unknown .*timeout/)
  api.close()
})

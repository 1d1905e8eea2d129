// N simulated agents (plain ws clients speaking the protocol) connect to the coordinator, which
// runs as child processes so that each one's RSS is its own: one process on SQLite, or R replicas
// sharing a private PostgreSQL (agents spread over them round robin). Then a status command goes to
// every host through the HTTP API, posted to the replicas in turn (so most are sent by another
// replica than the one that stored them), and every agent sends E events at once. Prints the connect
// time, the fan-out latency per command (POST sent → the coordinator's ack of the command.result,
// i.e. the result is stored), events stored per second and each replica's RSS.
//
//   npx tsx bench/coordinator-fanout.ts [--store sqlite|postgres|both] [--replicas R] [--events E] [N ...]
//   e.g. --store both --replicas 2 --events 10 10000      (defaults: sqlite, 2 replicas, 10 events, N=1000)
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { hostToken } from '../src/coordinator/identity.js'
import { startPostgres } from '../test/harness/postgres.js'
import { envelope, freePort, percentile, rssMiB } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const CONNECT_CONCURRENCY = 200
const POST_CONCURRENCY = 100

interface SimAgent {
  hostId: string
  ws: WebSocket
  resultAcked: Map<string, (at: number) => void>
}

const now = () => performance.now()

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++])
    }),
  )
}

function connectAgent(url: string, token: string, hostId: string): Promise<SimAgent> {
  return new Promise((resolvePromise, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
    const agent: SimAgent = { hostId, ws, resultAcked: new Map() }
    const hello = envelope(hostId, 'hello', {
      version: 'bench',
      actions: ['status'],
      facts: { gpu: { available: false, gpus: [] }, disk: null, images: null },
    })
    ws.once('open', () => ws.send(JSON.stringify(hello)))
    ws.once('error', reject)
    ws.on('message', (data) => {
      const m = JSON.parse(String(data))
      if (m.type === 'ack') {
        if (m.ids.includes(hello.id)) resolvePromise(agent)
        for (const id of m.ids) agent.resultAcked.get(id)?.(now())
        eventsAcked(m.ids.length)
      } else if (m.type === 'command') {
        const result = envelope(hostId, 'command.result', {
          commandId: m.commandId,
          ok: true,
          result: { hostId, simulated: true },
        })
        agent.resultAcked.set(result.id, (at) => {
          agent.resultAcked.delete(result.id)
          resultStored(m.commandId, at)
        })
        ws.send(JSON.stringify(result))
      }
    })
  })
}

// The result can be stored before the POST that created the command has answered, so either
// side may come first: a waiter for the time, or the time for a waiter.
const waiters = new Map<string, (at: number) => void>()
const storedAt = new Map<string, number>()
function resultStored(commandId: string, at: number): void {
  const waiter = waiters.get(commandId)
  if (waiter) {
    waiters.delete(commandId)
    waiter(at)
  } else storedAt.set(commandId, at)
}
function whenStored(commandId: string): Promise<number> {
  const at = storedAt.get(commandId)
  if (at !== undefined) {
    storedAt.delete(commandId)
    return Promise.resolve(at)
  }
  return new Promise((r) => waiters.set(commandId, r))
}

let onAcked: ((n: number) => void) | null = null
function eventsAcked(n: number): void {
  onAcked?.(n)
}

/** Sends `perAgent` events from every agent at once; resolves with how long until all were acked. */
async function sendEvents(agents: SimAgent[], perAgent: number): Promise<number> {
  let waiting = agents.length * perAgent
  const t0 = now()
  const done = new Promise<void>((r) => {
    onAcked = (n) => {
      waiting -= n
      if (waiting <= 0) r()
    }
  })
  for (const agent of agents) {
    for (let i = 0; i < perAgent; i++) {
      const e = envelope(agent.hostId, 'event', { eventType: 'bench.tick', data: { i } })
      agent.ws.send(JSON.stringify(e))
    }
  }
  await done
  onAcked = null
  return now() - t0
}

interface Replica {
  child: ReturnType<typeof spawn>
  port: number
}

type StoreKind = 'sqlite' | 'postgres'

async function startReplica(dir: string, name: string, storeYaml: string): Promise<Replica> {
  const port = await freePort()
  const config = join(dir, `${name}.yaml`)
  writeFileSync(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      `adminTokenFile: ${join(dir, 'admin')}`,
      `agentSecretFile: ${join(dir, 'agent-secret')}`,
      `dataDir: ${join(dir, name)}`,
      storeYaml,
      'log: { level: warn }',
      '',
    ].join('\n'),
  )
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'coordinator', '--config', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break
    } catch {
      /* not yet */
    }
    if (i > 300 || child.exitCode !== null) throw new Error(`the coordinator ${name} did not start`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, port }
}

async function run(n: number, kind: StoreKind, replicaCount: number, perAgent: number): Promise<void> {
  const teardowns: (() => void | Promise<void>)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'))
  writeFileSync(join(dir, 'admin'), 'bench-admin\n')
  // Each simulated host holds its own token, as real agents do (agentAuth: per-host).
  writeFileSync(join(dir, 'agent-secret'), 'bench-secret\n')
  const replicas: Replica[] = []
  try {
    let storeYaml = 'store: { kind: sqlite }'
    if (kind === 'postgres') {
      // durable: fsync on, as in production, so that a commit costs what it costs there.
      const server = await startPostgres({ teardown: (fn) => teardowns.push(fn) })
      storeYaml = `store: { kind: postgres, url: "${await server.createDatabase('fleet')}" }`
    }
    for (let r = 0; r < (kind === 'sqlite' ? 1 : replicaCount); r++) {
      replicas.push(await startReplica(dir, `replica-${r}`, storeYaml))
    }
    await measure(n, kind, replicas, perAgent)
  } finally {
    for (const { child } of replicas) {
      child.kill('SIGTERM')
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r))
    }
    for (const fn of teardowns.reverse()) await fn()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function measure(n: number, kind: StoreKind, replicas: Replica[], perAgent: number): Promise<void> {
  const base = (i: number) => `http://127.0.0.1:${replicas[i % replicas.length].port}`
  const admin = { authorization: 'Bearer bench-admin', 'content-type': 'application/json' }
  const rss = (field: 'VmRSS' | 'VmHWM') => replicas.map((r) => rssMiB(r.child.pid!, field).toFixed(0)).join(' + ')
  const idleRss = rss('VmRSS')

  const agents: SimAgent[] = []
  const t0 = now()
  await pool(
    Array.from({ length: n }, (_, i) => i),
    CONNECT_CONCURRENCY,
    async (i) => {
      const hostId = `sim-${String(i).padStart(6, '0')}`
      const url = `ws://127.0.0.1:${replicas[i % replicas.length].port}/v1/agents`
      agents.push(await connectAgent(url, hostToken('bench-secret', hostId), hostId))
    },
  )
  const connectMs = now() - t0
  const connectedRss = rss('VmRSS')

  const latencies: number[] = []
  const f0 = now()
  const finished: Promise<void>[] = []
  let posted = 0
  await pool(agents, POST_CONCURRENCY, async (agent) => {
    const sent = now()
    // To the replicas in turn: with two, about half are stored by one and sent by the other.
    const res = await fetch(`${base(posted++)}/v1/hosts/${agent.hostId}/commands`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ action: 'status' }),
    })
    const { commandId } = (await res.json()) as { commandId: string }
    finished.push(
      whenStored(commandId).then((at) => {
        latencies.push(at - sent)
      }),
    )
  })
  await Promise.all(finished)
  const fanoutMs = now() - f0
  latencies.sort((a, b) => a - b)
  const eventsMs = await sendEvents(agents, perAgent)
  const eventRate = ((n * perAgent) / (eventsMs / 1000)).toFixed(0)
  let connected = 0
  for (let r = 0; r < replicas.length; r++) {
    const text = await (await fetch(`${base(r)}/metrics`)).text()
    connected += Number(/^gpuhost_coordinator_agents_connected (\d+)/m.exec(text)?.[1])
  }
  const metrics = await (await fetch(`${base(0)}/metrics`)).text()
  const stored = /^gpuhost_coordinator_events_stored (\d+)/m.exec(metrics)?.[1]
  const succeeded = /^gpuhost_coordinator_commands\{action="status",status="succeeded"\} (\d+)/m.exec(metrics)?.[1]
  const connectRate = (n / (connectMs / 1000)).toFixed(0)
  const perCommand = [
    `p50 ${percentile(latencies, 50).toFixed(1)} ms`,
    `p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    `max ${latencies[latencies.length - 1].toFixed(1)} ms`,
  ].join(', ')
  const peakRss = rss('VmHWM')
  console.log(
    [
      `N=${n} on ${kind === 'sqlite' ? 'SQLite, one process' : `PostgreSQL, ${replicas.length} replicas`}`,
      `connect ${connectMs.toFixed(0)} ms (${connectRate} agents/s, ${CONNECT_CONCURRENCY} at a time)`,
      `fan-out: all ${n} results stored in ${fanoutMs.toFixed(0)} ms; ` +
        `per command ${perCommand} (${POST_CONCURRENCY} POSTs at a time)`,
      `events: ${n * perAgent} (${perAgent} per agent, sent at once) stored and acked in ` +
        `${eventsMs.toFixed(0)} ms: ${eventRate} events/s`,
      `RSS per replica: idle ${idleRss} MiB, ${n} connected ${connectedRss} MiB, peak ${peakRss} MiB`,
      `coordinator says: ${connected} connected, ${succeeded} status commands succeeded, ${stored} events stored`,
    ].join('\n  '),
  )
  for (const a of agents) a.ws.terminate()
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    store: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '2' },
    events: { type: 'string', default: '10' },
  },
})
const kinds: StoreKind[] =
  values.store === 'both' ? ['sqlite', 'postgres'] : values.store === 'postgres' ? ['postgres'] : ['sqlite']
const sizes = positionals.map(Number).filter((x) => x > 0)
const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' })
if (build.status !== 0) process.exit(1)
console.log(`coordinator fan-out on ${process.platform}, node ${process.version}`)
for (const n of sizes.length ? sizes : [1000]) {
  for (const kind of kinds) await run(n, kind, Number(values.replicas), Number(values.events))
}

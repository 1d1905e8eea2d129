// N simulated agents (plain ws clients speaking the protocol) connect to one coordinator, which
// runs as a child process so its RSS is its own; then a status command goes to every host through
// the HTTP API. Prints the connect time, the fan-out latency per command (POST sent → the
// coordinator's ack of the command.result, i.e. the result is stored) and the coordinator's RSS.
//
//   npx tsx bench/coordinator-fanout.ts [N ...]        e.g. 1000 2000 5000 (default 1000)
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { hostToken } from '../src/coordinator/identity.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const CONNECT_CONCURRENCY = 200
const POST_CONCURRENCY = 100

interface SimAgent {
  hostId: string
  ws: WebSocket
  resultAcked: Map<string, (at: number) => void>
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
      .once('error', rej)
      .listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port
        srv.close(() => res(port))
      })
  })
}

const now = () => performance.now()
const envelope = (hostId: string, type: string, body: object) => ({
  v: 1,
  id: crypto.randomUUID(),
  ts: new Date().toISOString(),
  hostId,
  type,
  ...body,
})

function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

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

async function run(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'))
  const port = await freePort()
  writeFileSync(join(dir, 'admin'), 'bench-admin\n')
  // Each simulated host holds its own token, as real agents do (agentAuth: per-host).
  writeFileSync(join(dir, 'agent-secret'), 'bench-secret\n')
  writeFileSync(
    join(dir, 'coordinator.yaml'),
    [
      `listen: 127.0.0.1:${port}`,
      `adminTokenFile: ${join(dir, 'admin')}`,
      `agentSecretFile: ${join(dir, 'agent-secret')}`,
      `dataDir: ${join(dir, 'data')}`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  )
  const child = spawn(
    process.execPath,
    [join(ROOT, 'dist', 'cli.js'), 'coordinator', '--config', join(dir, 'coordinator.yaml')],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const base = `http://127.0.0.1:${port}`
  const admin = { authorization: 'Bearer bench-admin', 'content-type': 'application/json' }
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/healthz`)).ok) break
      } catch {
        /* not yet */
      }
      if (i > 100) throw new Error('the coordinator did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
    const idleRss = rssMiB(child.pid!, 'VmRSS')

    const agents: SimAgent[] = []
    const t0 = now()
    await pool(
      Array.from({ length: n }, (_, i) => `sim-${String(i).padStart(6, '0')}`),
      CONNECT_CONCURRENCY,
      async (hostId) => {
        agents.push(await connectAgent(`ws://127.0.0.1:${port}/v1/agents`, hostToken('bench-secret', hostId), hostId))
      },
    )
    const connectMs = now() - t0
    const connectedRss = rssMiB(child.pid!, 'VmRSS')

    const latencies: number[] = []
    const f0 = now()
    const finished: Promise<void>[] = []
    await pool(agents, POST_CONCURRENCY, async (agent) => {
      const sent = now()
      const res = await fetch(`${base}/v1/hosts/${agent.hostId}/commands`, {
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
    const metrics = await (await fetch(`${base}/metrics`)).text()
    const connected = /^gpuhost_coordinator_agents_connected (\d+)/m.exec(metrics)?.[1]
    const succeeded = /^gpuhost_coordinator_commands\{action="status",status="succeeded"\} (\d+)/m.exec(metrics)?.[1]
    const connectRate = (n / (connectMs / 1000)).toFixed(0)
    const perCommand = [
      `p50 ${percentile(latencies, 50).toFixed(1)} ms`,
      `p99 ${percentile(latencies, 99).toFixed(1)} ms`,
      `max ${latencies[latencies.length - 1].toFixed(1)} ms`,
    ].join(', ')
    const peakRss = rssMiB(child.pid!, 'VmHWM').toFixed(0)
    console.log(
      [
        `N=${n}`,
        `connect ${connectMs.toFixed(0)} ms (${connectRate} agents/s, ${CONNECT_CONCURRENCY} at a time)`,
        `fan-out: all ${n} results stored in ${fanoutMs.toFixed(0)} ms; ` +
          `per command ${perCommand} (${POST_CONCURRENCY} POSTs at a time)`,
        `coordinator RSS: idle ${idleRss.toFixed(0)} MiB, ${n} connected ${connectedRss.toFixed(0)} MiB, ` +
          `peak ${peakRss} MiB`,
        `coordinator says: ${connected} connected, ${succeeded} status commands succeeded`,
      ].join('\n  '),
    )
    for (const a of agents) a.ws.terminate()
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0)
const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' })
if (build.status !== 0) process.exit(1)
console.log(`coordinator fan-out on ${process.platform}, node ${process.version}`)
for (const n of sizes.length ? sizes : [1000]) await run(n)

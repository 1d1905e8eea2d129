// N simulated agents (plain ws clients speaking the protocol) connect to one coordinator, run as a
// child process so its RSS is its own; then one rollout per maxParallelHosts value reaches every
// host. Each simulated agent answers a prewarm command after PULL_MS, as if the pull took that long.
// Prints, per rollout: the time from the POST to the last host's result being stored, the simulated
// pull time that had to pass (waves × PULL_MS), the difference (the coordinator's own overhead, in
// all and per host) and the coordinator's RSS.
//
//   npx tsx bench/rollout.ts [N] [PULL_MS]        (default 300 hosts, 50 ms)
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { hostToken } from '../src/coordinator/identity.js'
import { envelope, freePort, rssMiB } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const N = Number(process.argv[2] ?? 300)
const PULL_MS = Number(process.argv[3] ?? 50)
const PARALLEL = [1, 10, 100]
const now = () => performance.now()

/** when each rollout's results were stored (acked), by the image the command asked for */
const stored = new Map<string, number[]>()
let concurrentPulls = 0
let maxConcurrentPulls = 0

function connectAgent(url: string, token: string, hostId: string): Promise<WebSocket> {
  return new Promise((resolvePromise, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
    const hello = envelope(hostId, 'hello', {
      version: 'bench',
      actions: ['prewarm', 'release', 'status'],
      facts: { gpu: { available: false, gpus: [] }, disk: null, images: null },
    })
    const pendingAcks = new Map<string, string>()
    ws.once('open', () => ws.send(JSON.stringify(hello)))
    ws.once('error', reject)
    ws.on('message', (data) => {
      const m = JSON.parse(String(data))
      if (m.type === 'ack') {
        if (m.ids.includes(hello.id)) resolvePromise(ws)
        for (const id of m.ids) {
          const image = pendingAcks.get(id)
          if (image === undefined) continue
          pendingAcks.delete(id)
          stored.get(image)?.push(now())
        }
      } else if (m.type === 'command' && m.action === 'prewarm') {
        const image = m.args.images[0] as string
        concurrentPulls++
        maxConcurrentPulls = Math.max(maxConcurrentPulls, concurrentPulls)
        setTimeout(() => {
          concurrentPulls--
          const results = [
            {
              ref: image,
              status: 'pulled',
              reason: 'simulated',
              source: null,
              durationSeconds: 0,
              bytesPulled: 1 << 20,
            },
          ]
          const result = envelope(hostId, 'command.result', { commandId: m.commandId, ok: true, result: { results } })
          pendingAcks.set(result.id, image)
          ws.send(JSON.stringify(result))
        }, PULL_MS)
      }
    })
  })
}

async function main(): Promise<void> {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (build.status !== 0) process.exit(1)
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'))
  const port = await freePort()
  writeFileSync(join(dir, 'admin'), 'bench-admin\n')
  writeFileSync(join(dir, 'agent-secret'), 'bench-secret\n')
  const config = [
    `listen: 127.0.0.1:${port}`,
    `adminTokenFile: ${join(dir, 'admin')}`,
    `agentSecretFile: ${join(dir, 'agent-secret')}`,
    `dataDir: ${join(dir, 'data')}`,
    'log: { level: warn }',
    '',
  ]
  writeFileSync(join(dir, 'coordinator.yaml'), config.join('\n'))
  const child = spawn(
    process.execPath,
    [join(ROOT, 'dist', 'cli.js'), 'coordinator', '--config', join(dir, 'coordinator.yaml')],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const base = `http://127.0.0.1:${port}`
  const admin = { authorization: 'Bearer bench-admin', 'content-type': 'application/json' }
  const sockets: WebSocket[] = []
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
    for (let i = 0; i < N; i += 100) {
      const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => `sim-${String(i + k).padStart(6, '0')}`)
      const url = `ws://127.0.0.1:${port}/v1/agents`
      sockets.push(...(await Promise.all(batch.map((h) => connectAgent(url, hostToken('bench-secret', h), h)))))
    }
    console.log(`rollout bench: ${N} simulated agents, simulated pull ${PULL_MS} ms, node ${process.version}`)
    console.log(
      'maxParallel | POST→last result ms | simulated pull ms | overhead ms | per host ms | max pulling | RSS MiB',
    )
    for (const parallel of PARALLEL) {
      const image = `bench.local/img:p${parallel}`
      stored.set(image, [])
      maxConcurrentPulls = 0
      const sent = now()
      const res = await fetch(`${base}/v1/rollouts`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ images: [image], maxParallelHosts: parallel }),
      })
      if (res.status !== 201) throw new Error(`POST /v1/rollouts answered ${res.status}: ${await res.text()}`)
      while (stored.get(image)!.length < N) await new Promise((r) => setTimeout(r, 5))
      const last = Math.max(...stored.get(image)!)
      const total = last - sent
      const simulated = Math.ceil(N / parallel) * PULL_MS
      const overhead = total - simulated
      const row = [
        String(parallel).padStart(11),
        total.toFixed(0).padStart(19),
        String(simulated).padStart(17),
        overhead.toFixed(0).padStart(11),
        (overhead / N).toFixed(2).padStart(11),
        String(maxConcurrentPulls).padStart(11),
        rssMiB(child.pid!, 'VmRSS').toFixed(0).padStart(7),
      ]
      console.log(row.join(' | '))
    }
    console.log(`peak RSS ${rssMiB(child.pid!, 'VmHWM').toFixed(0)} MiB`)
  } finally {
    for (const ws of sockets) ws.terminate()
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()

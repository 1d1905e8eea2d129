// /metrics cost with 2,000 images (a simulated snapshot), side by side with Debian's
// prometheus-node-exporter scraped the same way on the same machine in the same run.
//
//   npm run -s build && npx tsx bench/metrics-scrape.ts [--images 2000] [--scrapes 500] [--json]
//
// The agent side runs the built agent code (dist/) in a child process of plain node, so its RSS
// is the agent's and not the TypeScript loader's: an Agent with no collectors, whose snapshot is
// filled with generated ImageFacts, serving /metrics through its real HTTP server and registry.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import type { HostSnapshot, ImageFacts } from '../src/core/snapshot.js'
import { freePort, rssMiB, serviceNodeOptions } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const DIST = join(ROOT, 'dist')
const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '2000' },
    scrapes: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
  },
})
const IMAGES = Number(values.images)
const SCRAPES = Number(values.scrapes)
const WARMUP = 20
/** human lines go to stderr when stdout carries the JSON figures */
const out = values.json ? process.stderr : process.stdout

function generateImages(n: number, now: Date): ImageFacts[] {
  const images: ImageFacts[] = []
  for (let i = 0; i < n; i++) {
    const hex = i.toString(16).padStart(64, '0')
    const state = i % 10 === 0 ? 'in_use' : i % 7 === 0 ? 'dangling' : 'unused'
    images.push({
      id: `sha256:${hex}`,
      repoTags: state === 'dangling' ? [] : [`registry.example.internal/team-${i % 40}/model-${i}:v${i % 13}`],
      repoDigests: [`registry.example.internal/team-${i % 40}/model-${i}@sha256:${hex}`],
      sizeBytes: 200e6 + (i % 50) * 100e6,
      sharedSizeBytes: -1,
      createdAt: new Date(now.getTime() - i * 3600e3).toISOString(),
      containers: state === 'in_use' ? [{ id: `c${i}`, name: `job-${i}`, state: 'running' }] : [],
      dangling: state === 'dangling',
      lastUsed: i % 3 === 0 ? null : new Date(now.getTime() - i * 60e3).toISOString(),
      firstSeen: new Date(now.getTime() - 30 * 86400e3).toISOString(),
      cudaEnv: i % 2 ? { CUDA_VERSION: '12.2.2', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' } : {},
      compat: i % 2 ? { compatible: i % 5 !== 1, reason: 'generated', requirement: 'cuda>=12.2' } : undefined,
    })
  }
  return images
}

/** the child: the built agent, its snapshot filled from a file; prints its port */
const AGENT_CHILD = `
import { readFileSync } from 'node:fs'
const dist = process.argv[1]
const { Agent } = await import(dist + '/agent/agent.js')
const { agentConfigSchema, parseConfig } = await import(dist + '/config.js')
const { createLogger } = await import(dist + '/log.js')
const snap = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const config = parseConfig(agentConfigSchema, { listen: '127.0.0.1:0', tokenFile: null, stateDir: process.argv[3] })
const agent = new Agent(config, createLogger({ level: 'silent', toStderr: true }), [], [])
await agent.start()
agent.ctx.store.set('disk', snap.disk)
agent.ctx.store.set('docker', snap.docker)
agent.ctx.store.set('images', snap.images)
for (const [name, s] of Object.entries(snap.collectors)) agent.ctx.store.recordCollector(name, s)
process.stdout.write(JSON.stringify({ port: agent.ctx.http.port() }) + '\\n')
process.on('SIGTERM', () => agent.stop().then(() => process.exit(0)))
`

async function firstLine(child: ChildProcess): Promise<string> {
  const rl = createInterface({ input: child.stdout! })
  for await (const line of rl) return line
  throw new Error('the child exited before it said anything')
}

async function waitForUrl(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not answer within ${ms} ms`)
}

interface Result {
  target: string
  p50: number
  p99: number
  max: number
  bytes: number
  series: number
  rss: number
}

async function scrape(target: string, url: string, pid: number): Promise<Result> {
  let body = ''
  for (let i = 0; i < WARMUP; i++) body = await (await fetch(url)).text()
  const ms: number[] = []
  for (let i = 0; i < SCRAPES; i++) {
    const started = process.hrtime.bigint()
    body = await (await fetch(url)).text()
    ms.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  ms.sort((a, b) => a - b)
  const pick = (q: number) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)]
  return {
    target,
    p50: pick(0.5),
    p99: pick(0.99),
    max: ms[ms.length - 1],
    bytes: Buffer.byteLength(body),
    series: body.split('\n').filter((l) => l && !l.startsWith('#')).length,
    rss: rssMiB(pid),
  }
}

function stop(child: ChildProcess | null): void {
  if (child && child.exitCode === null) child.kill('SIGTERM')
}

async function main(): Promise<void> {
  if (!existsSync(join(DIST, 'agent', 'agent.js'))) throw new Error('dist/ is missing: run `npm run -s build` first')
  const exporterBin = ['/usr/bin/prometheus-node-exporter'].find(existsSync)
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'))
  let agent: ChildProcess | null = null
  let exporter: ChildProcess | null = null
  const cleanup = () => {
    stop(agent)
    stop(exporter)
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => {
    cleanup()
    process.exit(130)
  })
  try {
    const now = new Date()
    const snapshot: Pick<HostSnapshot, 'disk' | 'docker' | 'images' | 'collectors'> = {
      disk: {
        path: '/var/lib/docker',
        mountpoint: '/var/lib/docker',
        sizeBytes: 2e12,
        usedBytes: 1.7e12,
        availBytes: 0.3e12,
        usedPercent: 85,
      },
      docker: { reachable: true, rootDir: '/var/lib/docker', version: '24.0.7' },
      images: generateImages(IMAGES, now),
      collectors: {
        disk: { success: true, durationSeconds: 0.004, at: now.toISOString() },
        images: { success: true, durationSeconds: 0.2, at: now.toISOString() },
      },
    }
    const snapFile = join(dir, 'snapshot.json')
    writeFileSync(snapFile, JSON.stringify(snapshot))
    agent = spawn(
      process.execPath,
      ['--input-type=module', '-e', AGENT_CHILD, pathToFileURL(DIST).href, snapFile, join(dir, 'state')],
      // run as the systemd unit runs the agent (its NODE_OPTIONS), so the RSS is the one a host sees
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: serviceNodeOptions() } },
    )
    const { port } = JSON.parse(await firstLine(agent)) as { port: number }
    const results: Result[] = [
      await scrape(`gpuhost agent, ${IMAGES} images`, `http://127.0.0.1:${port}/metrics`, agent.pid!),
    ]

    if (exporterBin) {
      const exporterPort = await freePort()
      exporter = spawn(exporterBin, [`--web.listen-address=127.0.0.1:${exporterPort}`], { stdio: 'ignore' })
      await waitForUrl(`http://127.0.0.1:${exporterPort}/metrics`, 15_000)
      results.push(
        await scrape(
          'prometheus-node-exporter (Debian, defaults)',
          `http://127.0.0.1:${exporterPort}/metrics`,
          exporter.pid!,
        ),
      )
    } else {
      out.write(
        '# prometheus-node-exporter is not installed (apt-get install -y prometheus-node-exporter); agent only\n',
      )
    }

    out.write(
      `# ${SCRAPES} sequential scrapes each after ${WARMUP} warm-up scrapes, keep-alive, loopback; ` +
        `node ${process.version}\n`,
    )
    const rows = [
      ['target', 'p50 ms', 'p99 ms', 'max ms', 'body KiB', 'series', 'RSS MiB'],
      ...results.map((r) => [
        r.target,
        r.p50.toFixed(2),
        r.p99.toFixed(2),
        r.max.toFixed(2),
        (r.bytes / 1024).toFixed(1),
        String(r.series),
        r.rss.toFixed(1),
      ]),
    ]
    const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)))
    for (const row of rows)
      out.write(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ') + '\n')
    if (values.json) {
      const [agentResult, exporterResult] = results
      process.stdout.write(
        JSON.stringify({ images: IMAGES, scrapes: SCRAPES, agent: agentResult, exporter: exporterResult ?? null }) +
          '\n',
      )
    }
  } finally {
    cleanup()
  }
}

await main()

// How long the built agent takes to answer /healthz after it is started, and to exit after SIGTERM,
// as a service manager sees it; `gpuhost --version` (node loading the CLI and nothing else) is the
// reference for what any start costs on this machine. Then the idle agent's RSS (no Docker, no GPU),
// side by side with an idle `node -e` and with Debian's prometheus-node-exporter, each read from
// /proc after the same quiet time (--idle-seconds). The agent's idle RSS is the median of --idle-runs
// agents started one after another: V8 may or may not have shrunk its heap after that quiet time,
// which moves one reading by several MiB.
//
//   npm run -s build && npx tsx bench/startup.ts [--runs 10] [--idle-seconds 10] [--idle-runs 1] [--json]
//
// Each run starts `node dist/cli.js agent` on a fresh config in a temporary directory: loopback on a
// free port, a state directory of its own, a Docker socket that does not exist and no nvidia-smi, so
// the figures are the agent's own and not a daemon's answer time.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort } from '../test/harness/ports.js'
import { percentile, rssMiB, serviceNodeOptions } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const CLI = join(ROOT, 'dist', 'cli.js')
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '10' },
    'idle-runs': { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
})
const RUNS = Number(values.runs)
const IDLE_S = Number(values['idle-seconds'])
const IDLE_RUNS = Number(values['idle-runs'])
/** human lines go to stderr when stdout carries the JSON figures */
const say = (line: string) => (values.json ? process.stderr : process.stdout).write(line + '\n')
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`--runs must be a positive integer, not ${values.runs}`)
  process.exit(2)
}
if (!Number.isFinite(IDLE_S) || IDLE_S < 0) {
  console.error(`--idle-seconds must be a number ≥ 0, not ${values['idle-seconds']}`)
  process.exit(2)
}
if (!Number.isInteger(IDLE_RUNS) || IDLE_RUNS < 1) {
  console.error(`--idle-runs must be a positive integer, not ${values['idle-runs']}`)
  process.exit(2)
}
if (!existsSync(CLI)) {
  console.error(`${CLI} is missing: run npm run -s build first`)
  process.exit(2)
}
// Bounds on waiting only, so that a broken build ends the bench instead of hanging it.
const START_LIMIT_MS = 60_000
const STOP_LIMIT_MS = 60_000

const dir = mkdtempSync(join(tmpdir(), 'gpuhost-bench-startup-'))
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: string | null; at: number }> {
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal, at: performance.now() })))
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok
  } catch {
    return false
  }
}

interface Run {
  healthzMs: number
  stopMs: number
  code: number | null
  /** RSS after idleSeconds of quiet, when asked */
  idleRssMiB?: number
}

async function runAgentOnce(i: number, idleSeconds = 0): Promise<Run> {
  const port = await freePort()
  const config = join(dir, `agent-${i}.yaml`)
  writeFileSync(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      `stateDir: ${join(dir, `state-${i}`)}`,
      'tokenFile: null',
      'docker: { socket: /nonexistent/docker.sock }',
      'gpu: { nvidiaSmi: /nonexistent/nvidia-smi }',
      '',
    ].join('\n'),
  )
  let output = ''
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, 'agent', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: serviceNodeOptions() },
  })
  children.add(child)
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = exitOf(child)
  const url = `http://127.0.0.1:${port}/healthz`
  while (!(await healthy(url))) {
    if (child.exitCode !== null) throw new Error(`the agent exited with ${child.exitCode} before /healthz:\n${output}`)
    if (performance.now() - started > START_LIMIT_MS)
      throw new Error(`no /healthz after ${START_LIMIT_MS} ms:\n${output}`)
    await sleep(5)
  }
  const healthzMs = performance.now() - started
  let idleRssMiB: number | undefined
  if (idleSeconds > 0) {
    await sleep(idleSeconds * 1000)
    idleRssMiB = rssMiB(child.pid!)
  }
  const signalled = performance.now()
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_LIMIT_MS)
  const { code, signal, at } = await exited
  clearTimeout(timer)
  children.delete(child)
  if (signal) throw new Error(`the agent ended by ${signal}, not by exiting after SIGTERM:\n${output}`)
  return { healthzMs, stopMs: at - signalled, code, idleRssMiB }
}

async function versionOnce(): Promise<number> {
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, '--version'], { stdio: 'ignore' })
  children.add(child)
  const { code, at } = await exitOf(child)
  children.delete(child)
  if (code !== 0) throw new Error(`gpuhost --version exited with ${code}`)
  return at - started
}

/** RSS of `node -e` doing nothing, after the same quiet time: what any node process costs */
async function idleNodeRss(idleSeconds: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' })
  children.add(child)
  await sleep(idleSeconds * 1000)
  const rss = rssMiB(child.pid!)
  child.kill('SIGTERM')
  children.delete(child)
  return rss
}

/** RSS of Debian's prometheus-node-exporter on a private loopback port, scraped once, after the quiet time */
async function idleExporterRss(idleSeconds: number): Promise<number | null> {
  const bin = '/usr/bin/prometheus-node-exporter'
  if (!existsSync(bin)) return null
  const port = await freePort()
  const child = spawn(bin, [`--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' })
  children.add(child)
  try {
    const started = performance.now()
    while (!(await healthy(`http://127.0.0.1:${port}/metrics`))) {
      if (child.exitCode !== null) throw new Error(`prometheus-node-exporter exited with ${child.exitCode}`)
      if (performance.now() - started > START_LIMIT_MS) throw new Error('prometheus-node-exporter did not answer')
      await sleep(20)
    }
    await sleep(idleSeconds * 1000)
    return rssMiB(child.pid!)
  } finally {
    child.kill('SIGTERM')
    children.delete(child)
  }
}

function summary(name: string, ms: number[]): string[] {
  const sorted = [...ms].sort((a, b) => a - b)
  return [name, percentile(sorted, 50), percentile(sorted, 95), sorted[0], sorted[sorted.length - 1]].map((v) =>
    typeof v === 'number' ? v.toFixed(1) : v,
  )
}

const runs: Run[] = []
const versions: number[] = []
for (let i = 0; i < RUNS; i++) {
  runs.push(await runAgentOnce(i))
  versions.push(await versionOnce())
}
const idleRuns: number[] = []
for (let i = 0; IDLE_S > 0 && i < IDLE_RUNS; i++) idleRuns.push((await runAgentOnce(RUNS + i, IDLE_S)).idleRssMiB!)
const idle = idleRuns.length
  ? percentile(
      [...idleRuns].sort((a, b) => a - b),
      50,
    )
  : null
const nodeIdle = IDLE_S > 0 ? await idleNodeRss(IDLE_S) : null
const exporterIdle = IDLE_S > 0 ? await idleExporterRss(IDLE_S) : null
const exitCodes = [...new Set(runs.map((r) => r.code))].join(', ')

const rows = [
  ['measure', 'p50 ms', 'p95 ms', 'min ms', 'max ms'],
  summary(
    'start -> /healthz 200',
    runs.map((r) => r.healthzMs),
  ),
  summary(
    `SIGTERM -> exit (code ${exitCodes})`,
    runs.map((r) => r.stopMs),
  ),
  summary('gpuhost --version', versions),
]
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
say(`gpuhost agent start and stop, ${RUNS} runs, node ${process.version}`)
for (const r of rows) say(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))
if (idle !== null) {
  const exporter = exporterIdle === null ? 'not installed' : `${exporterIdle.toFixed(1)} MiB`
  say(
    `RSS after ${IDLE_S} s idle: gpuhost agent (no Docker, no GPU) ${idle.toFixed(1)} MiB ` +
      `(median of ${idleRuns.map((x) => x.toFixed(1)).join(', ')}); ` +
      `node -e idle ${nodeIdle!.toFixed(1)} MiB; prometheus-node-exporter ${exporter}`,
  )
}
if (values.json) {
  const p50 = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      50,
    )
  const figures = {
    runs: RUNS,
    healthzP50Ms: p50(runs.map((r) => r.healthzMs)),
    stopP50Ms: p50(runs.map((r) => r.stopMs)),
    versionP50Ms: p50(versions),
    idleSeconds: IDLE_S,
    agentIdleRssMiB: idle,
    agentIdleRssSamplesMiB: idleRuns,
    nodeIdleRssMiB: nodeIdle,
    exporterIdleRssMiB: exporterIdle,
  }
  process.stdout.write(JSON.stringify(figures) + '\n')
}
if (runs.some((r) => r.code !== 0)) process.exitCode = 1

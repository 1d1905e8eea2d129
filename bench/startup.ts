// How long the built agent takes to answer /healthz after it is started, and to exit after SIGTERM,
// as a service manager sees it; `gpuhost --version` (node loading the CLI and nothing else) is the
// reference for what any start costs on this machine.
//
//   npm run -s build && npx tsx bench/startup.ts [--runs 10]
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
import { percentile } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const CLI = join(ROOT, 'dist', 'cli.js')
const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } })
const RUNS = Number(values.runs)
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`--runs must be a positive integer, not ${values.runs}`)
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
}

async function runAgentOnce(i: number): Promise<Run> {
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
  const child = spawn(process.execPath, [CLI, 'agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
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
  const signalled = performance.now()
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_LIMIT_MS)
  const { code, signal, at } = await exited
  clearTimeout(timer)
  children.delete(child)
  if (signal) throw new Error(`the agent ended by ${signal}, not by exiting after SIGTERM:\n${output}`)
  return { healthzMs, stopMs: at - signalled, code }
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
console.log(`gpuhost agent start and stop, ${RUNS} runs, node ${process.version}`)
for (const r of rows)
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))
if (runs.some((r) => r.code !== 0)) process.exitCode = 1

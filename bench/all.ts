// Every figure gpuhost is held to, each beside its reference measured in the same run, in one table:
// what | gpuhost | reference | goal | met?
//
//   npm run bench            (builds first; runs each bench below with --json and prints the table)
//
// Each bench also runs alone and prints its own detail. A row that needs root, dockerd, docker or
// docker-registry says "skipped (needs …)" on a machine without them instead of failing the run;
// a bench that fails prints its error and the row says so.
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = resolve(fileURLToPath(new URL('.', import.meta.url)))

/** the programs a bench needs besides node, found on PATH or not */
function missing(needs: string[]): string[] {
  const path = (process.env.PATH ?? '').split(delimiter)
  return needs.filter((need) => {
    if (need === 'root') return process.getuid?.() !== 0
    return !path.some((dir) => {
      try {
        accessSync(join(dir, need), constants.X_OK)
        return true
      } catch {
        return false
      }
    })
  })
}

type Outcome<T> = { ok: true; figures: T } | { ok: false; why: string }

/** runs one bench with --json under the same node and TypeScript loader; its last stdout line is its figures */
async function runBench<T>(file: string, args: string[], needs: string[] = []): Promise<Outcome<T>> {
  const lacking = missing(needs)
  if (lacking.length) return { ok: false, why: `skipped (needs ${lacking.join(', ')})` }
  process.stderr.write(`# ${file} ${args.join(' ')}\n`)
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH, file), ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const code = await new Promise<number | null>((r) => child.once('close', r))
  if (code !== 0) {
    process.stderr.write(stderr)
    return { ok: false, why: `failed (exit ${code}; its output is above)` }
  }
  const last = stdout.trim().split('\n').pop() ?? ''
  try {
    return { ok: true, figures: JSON.parse(last) as T }
  } catch {
    process.stderr.write(stderr + stdout)
    return { ok: false, why: 'failed (no figures on its last line)' }
  }
}

interface Row {
  what: string
  gpuhost: string
  reference: string
  goal: string
  met: string
}

const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} ms`
const s = (x: number) => `${(x / 1000).toFixed(2)} s`
const mib = (x: number) => `${x.toFixed(1)} MiB`
const yes = (ok: boolean) => (ok ? 'yes' : 'no')
const notRun = (what: string, goal: string, why: string): Row => ({ what, gpuhost: why, reference: '', goal, met: '—' })

interface Startup {
  healthzP50Ms: number
  versionP50Ms: number
  agentIdleRssMiB: number
  nodeIdleRssMiB: number
  exporterIdleRssMiB: number | null
}
interface Churn {
  images: number
  idle: { rssMiB: number; heapUsedMiB: number; peakRssMiB: number }
  load: { scrapers: number; seconds: number; scrapes: number; pruneMs: number; peakRssMiB: number } | null
}
interface Scrape {
  images: number
  agent: { p99: number; rss: number }
  exporter: { p99: number } | null
}
interface GpuParse {
  parseMeanMs: number
  scanMeanMs: number
  documentKiB: number
}
interface PrunePlan {
  images: number
  medianMs: number
}
interface Pulls {
  count: number
  mib: number
  concurrency: number
  medians: { cli: number; daemon: number; parallel: number; loop: number }
}

const rows: Row[] = []

const startup = await runBench<Startup>('startup.ts', ['--runs', '10', '--idle-seconds', '10'])
{
  const what = 'agent RSS, idle host (no Docker, no GPU)'
  const goal = '≤ 64 MiB'
  if (startup.ok) {
    const f = startup.figures
    const exporter = f.exporterIdleRssMiB === null ? 'not installed' : mib(f.exporterIdleRssMiB)
    rows.push({
      what,
      gpuhost: mib(f.agentIdleRssMiB),
      reference: `node -e idle ${mib(f.nodeIdleRssMiB)}; node_exporter ${exporter}`,
      goal,
      met: yes(f.agentIdleRssMiB <= 64),
    })
  } else rows.push(notRun(what, goal, startup.why))
}

const churn = await runBench<Churn>(
  'memory-churn.ts',
  ['--minutes', '0', '--settle', '20'],
  ['root', 'dockerd', 'docker', 'mkfs.ext4'],
)
{
  const what = 'agent RSS, 2,000 images, collectors on'
  const goal = '≤ 64 MiB'
  if (churn.ok) {
    const f = churn.figures
    rows.push({
      what: `agent RSS, ${f.images.toLocaleString('en')} images, collectors on`,
      gpuhost: mib(f.idle.rssMiB),
      reference: `heap used ${mib(f.idle.heapUsedMiB)}; peak RSS since start ${mib(f.idle.peakRssMiB)}`,
      goal,
      met: yes(f.idle.rssMiB <= 64),
    })
  } else rows.push(notRun(what, goal, churn.why))
}

{
  const what = 'agent peak RSS, 2,000 images, 50 scrapers and a prune plan'
  const goal = '≤ 96 MiB'
  if (churn.ok && churn.figures.load) {
    const { load } = churn.figures
    rows.push({
      what,
      gpuhost: mib(load.peakRssMiB),
      reference: `${load.scrapes.toLocaleString('en')} scrapes in ${load.seconds} s; prune plan ${s(load.pruneMs)}`,
      goal,
      met: yes(load.peakRssMiB <= 96),
    })
  } else rows.push(notRun(what, goal, churn.ok ? 'not run (--scrapers 0)' : churn.why))
}

{
  const what = 'start to /healthz (p50)'
  const goal = '≤ 0.5 s'
  if (startup.ok) {
    const f = startup.figures
    rows.push({
      what,
      gpuhost: s(f.healthzP50Ms),
      reference: `gpuhost --version ${s(f.versionP50Ms)}`,
      goal,
      met: yes(f.healthzP50Ms <= 500),
    })
  } else rows.push(notRun(what, goal, startup.why))
}

const scrape = await runBench<Scrape>('metrics-scrape.ts', ['--images', '2000', '--scrapes', '500'])
{
  const what = '/metrics p99, 2,000 images'
  const goal = "≤ 0.25 × node_exporter's p99"
  if (scrape.ok) {
    const f = scrape.figures
    rows.push({
      what,
      gpuhost: ms(f.agent.p99),
      reference: f.exporter ? `node_exporter p99 ${ms(f.exporter.p99)}` : 'node_exporter not installed',
      goal,
      met: f.exporter ? yes(f.agent.p99 <= 0.25 * f.exporter.p99) : '—',
    })
  } else rows.push(notRun(what, goal, scrape.why))
}

const parse = await runBench<GpuParse>('gpu-parse.ts', ['1000'])
{
  const what = 'nvidia-smi XML parse, 8 GPUs (mean)'
  const goal = '≤ 2 ms'
  if (parse.ok) {
    const f = parse.figures
    rows.push({
      what: `nvidia-smi XML parse, 8 GPUs, ${f.documentKiB.toFixed(0)} KiB (mean)`,
      gpuhost: ms(f.parseMeanMs),
      reference: `one linear regex scan ${ms(f.scanMeanMs)}`,
      goal,
      met: yes(f.parseMeanMs <= 2),
    })
  } else rows.push(notRun(what, goal, parse.why))
}

const prune = await runBench<PrunePlan>('prune-plan.ts', [])
{
  const what = 'prune plan over 10,000 images (median)'
  const goal = '≤ 25 ms'
  if (prune.ok) {
    const f = prune.figures
    rows.push({
      what: `prune plan over ${f.images.toLocaleString('en')} images (median)`,
      gpuhost: ms(f.medianMs),
      reference: '—',
      goal,
      met: yes(f.medianMs <= 25),
    })
  } else rows.push(notRun(what, goal, prune.why))
}

const pulls = await runBench<Pulls>(
  'prewarm-vs-docker-pull.ts',
  ['--images', '6', '--mib', '60', '--concurrency', '2', '--rounds', '3'],
  ['root', 'dockerd', 'docker', 'docker-registry', 'mkfs.ext4'],
)
for (const via of ['cli', 'daemon'] as const) {
  const path = via === 'cli' ? 'CLI' : 'daemon POST /v1/prewarm'
  const what = `prewarm 6 × 60 MiB, concurrency 2, ${path}`
  const goal = '≤ 1.05 × parallel docker pull'
  if (pulls.ok) {
    const f = pulls.figures
    const ratio = f.medians[via] / f.medians.parallel
    rows.push({
      what: `prewarm ${f.count} × ${f.mib} MiB, concurrency ${f.concurrency}, ${path}`,
      gpuhost: `${f.medians[via].toFixed(2)} s (${ratio.toFixed(2)}×)`,
      reference:
        `xargs -P${f.concurrency} docker pull ${f.medians.parallel.toFixed(2)} s; ` +
        `sequential loop ${f.medians.loop.toFixed(2)} s`,
      goal,
      met: yes(ratio <= 1.05),
    })
  } else rows.push(notRun(what, goal, pulls.why))
}

const header: Row = { what: 'what', gpuhost: 'gpuhost', reference: 'reference (same run)', goal: 'goal', met: 'met?' }
const keys = Object.keys(header) as (keyof Row)[]
const widths = keys.map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)))
const line = (r: Row) => '| ' + keys.map((k, i) => r[k].padEnd(widths[i])).join(' | ') + ' |'
process.stdout.write(`\ngpuhost benches, node ${process.version}, ${new Date().toISOString()}\n`)
process.stdout.write(
  [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n') + '\n',
)

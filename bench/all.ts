// Every figure gpuhost is held to, each beside its reference measured in the same run, in two tables
// (memory, then time) of the same columns: what | gpuhost | reference | goal | met?
//
//   npm run bench [-- --churn-minutes 30]   (builds first; runs each bench below with --json)
//
// The memory goals stand on a floor measured in the same run (bench/floor.ts): the RSS of an idle
// node process that has imported the packages the agent is built on, read as the idle agent's is.
// The drift row needs --churn-minutes (its goal is over 30); by default the churn is not run, as
// 30 minutes would be most of the run.
//
// Each bench also runs alone and prints its own detail. A row that needs root, dockerd, docker or
// docker-registry says "skipped (needs …)" on a machine without them instead of failing the run;
// a bench that fails prints its error and the row says so.
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { FLOOR_PACKAGES, type Floor } from './floor.js'

const BENCH = resolve(fileURLToPath(new URL('.', import.meta.url)))
const { values } = parseArgs({ options: { 'churn-minutes': { type: 'string', default: '0' } } })
const CHURN_MINUTES = Number(values['churn-minutes'])
if (!Number.isFinite(CHURN_MINUTES) || CHURN_MINUTES < 0) {
  console.error(`--churn-minutes must be a number ≥ 0, not ${values['churn-minutes']}`)
  process.exit(2)
}
/** the quiet time before an idle RSS is read, the same for the floor and the idle agent */
const IDLE_SECONDS = '10'
/** idle processes per median, for the floor and the idle agent alike */
const IDLE_SAMPLES = '5'

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
  minutes: number
  compare: { firstQuarterRssMiB: number; lastQuarterRssMiB: number } | null
  samples: unknown[]
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

const memory: Row[] = []
const rows: Row[] = []

const floor = await runBench<Floor>('floor.ts', ['--samples', IDLE_SAMPLES, '--idle-seconds', IDLE_SECONDS])
/** a goal of floor + margin, written out with its sum, and whether a figure meets it */
function aboveFloor(margin: number): { goal: string; met: (x: number) => string } {
  if (!floor.ok) return { goal: `floor + ${margin} MiB (floor ${floor.why})`, met: () => '—' }
  const limit = floor.figures.floorMiB + margin
  return { goal: `floor + ${margin} MiB = ${mib(limit)}`, met: (x) => yes(x <= limit) }
}
const floorRef = floor.ok ? `floor ${mib(floor.figures.floorMiB)}; node alone ${mib(floor.figures.nodeAloneMiB)}` : ''

const startup = await runBench<Startup>('startup.ts', [
  '--runs',
  '10',
  '--idle-seconds',
  IDLE_SECONDS,
  '--idle-runs',
  IDLE_SAMPLES,
])
{
  const what = 'agent RSS, idle host (no Docker, no GPU)'
  const { goal, met } = aboveFloor(10)
  if (startup.ok) {
    const f = startup.figures
    const exporter = f.exporterIdleRssMiB === null ? 'not installed' : mib(f.exporterIdleRssMiB)
    memory.push({
      what,
      gpuhost: mib(f.agentIdleRssMiB),
      reference: `${floorRef || `node -e idle ${mib(f.nodeIdleRssMiB)}`}; node_exporter ${exporter}`,
      goal,
      met: met(f.agentIdleRssMiB),
    })
  } else memory.push(notRun(what, goal, startup.why))
}

const churn = await runBench<Churn>(
  'memory-churn.ts',
  ['--minutes', String(CHURN_MINUTES), '--settle', '20'],
  ['root', 'dockerd', 'docker', 'mkfs.ext4'],
)
{
  const what = 'agent RSS, 2,000 images, collectors on'
  const { goal, met } = aboveFloor(20)
  if (churn.ok) {
    const f = churn.figures
    memory.push({
      what: `agent RSS, ${f.images.toLocaleString('en')} images, collectors on`,
      gpuhost: mib(f.idle.rssMiB),
      reference: [floorRef, `heap used ${mib(f.idle.heapUsedMiB)}`, `peak since start ${mib(f.idle.peakRssMiB)}`]
        .filter(Boolean)
        .join('; '),
      goal,
      met: met(f.idle.rssMiB),
    })
  } else memory.push(notRun(what, goal, churn.why))
}

{
  const what = 'agent peak RSS, 2,000 images, 50 scrapers and a prune plan'
  const goal = '≤ 128 MiB'
  if (churn.ok && churn.figures.load) {
    const { load } = churn.figures
    memory.push({
      what,
      gpuhost: mib(load.peakRssMiB),
      reference: `${load.scrapes.toLocaleString('en')} scrapes in ${load.seconds} s; prune plan ${s(load.pruneMs)}`,
      goal,
      met: yes(load.peakRssMiB <= 128),
    })
  } else memory.push(notRun(what, goal, churn.ok ? 'not run (--scrapers 0)' : churn.why))
}

{
  const what = `agent RSS drift, 2,000 images churned for ${CHURN_MINUTES} min`
  const goal = '≤ 3 % over 30 min'
  if (churn.ok && churn.figures.compare) {
    const f = churn.figures
    const { firstQuarterRssMiB: first, lastQuarterRssMiB: last } = f.compare!
    const drift = ((last - first) / first) * 100
    const quarter = Math.max(1, Math.floor(f.samples.length / 4))
    memory.push({
      what: `agent RSS drift, ${f.images.toLocaleString('en')} images churned for ${f.minutes} min`,
      gpuhost: `${drift >= 0 ? '+' : ''}${drift.toFixed(1)} %`,
      reference: `median RSS of first ${quarter} samples ${mib(first)}, last ${quarter} ${mib(last)}`,
      goal,
      // a shorter churn meets or misses its figure, but not the 30 minutes the goal asks
      met: yes(Math.abs(drift) <= 3) + (f.minutes < 30 ? ` (${f.minutes} of 30 min)` : ''),
    })
  } else
    memory.push(
      notRun(what, goal, churn.ok ? 'not run (--churn-minutes 0; npm run bench -- --churn-minutes 30)' : churn.why),
    )
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
function table(section: Row[]): string {
  const widths = keys.map((k) => Math.max(...[header, ...section].map((r) => r[k].length)))
  const line = (r: Row) => '| ' + keys.map((k, i) => r[k].padEnd(widths[i])).join(' | ') + ' |'
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...section.map(line)].join('\n')
}
const floorLine = floor.ok
  ? `floor: VmRSS of node (NODE_OPTIONS=${floor.figures.nodeOptions || 'none'}) after importing ` +
    `${floor.figures.packages.join(', ')}, then ${floor.figures.idleSeconds} s idle, ` +
    `median of ${floor.figures.samples}: ${mib(floor.figures.floorMiB)} (node alone ${mib(floor.figures.nodeAloneMiB)})`
  : `floor (${FLOOR_PACKAGES.join(', ')} imported, then idle): ${floor.why}`
process.stdout.write(`\ngpuhost benches, node ${process.version}, ${new Date().toISOString()}\n`)
process.stdout.write(`\nmemory\n${floorLine}\n\n${table(memory)}\n\ntime\n\n${table(rows)}\n`)

// The agent's memory over time on a host with thousands of images that keep changing: a private
// dockerd holding 2,000 distinct images, the built agent with its collectors on (images inspected,
// Docker events followed), and images removed and added all along, the count held steady. Samples
// the agent's RSS (from /proc) and V8 heap (its own /metrics) every few seconds, prints the series
// and compares the first quarter with the last (medians), so a leak shows as a rising line.
//
//   npm run -s build && npx tsx bench/memory-churn.ts [--images 2000] [--minutes 30] [--sample 30]
//                                                    [--churn 20] [--churn-every 5] [--scrapers 50]
//                                                    [--load-seconds 20] [--json]
//
// After the churn (so that the churn's first samples are not the load's memory being given back),
// the agent is put under load for --load-seconds: --scrapers clients scraping /metrics back to back
// while a prune plans over every image (a dry run with target 1 %, so the whole inventory is planned
// and reported). The peak RSS of that phase is read from
// VmHWM, reset first through /proc/PID/clear_refs. --scrapers 0 skips it.
//
// --minutes 0 measures the settled agent with its images and no churn (the figures `npm run bench`
// shows). Needs root, dockerd and docker (see .ci/run).
import { existsSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, post, startAgent } from '../test/harness/agent.js'
import { startDockerd } from '../test/harness/dockerd.js'
import { loadManyImages } from './many-images.js'
import { benchRun, rssMiB, serviceNodeOptions } from './support.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '2000' },
    minutes: { type: 'string', default: '30' },
    sample: { type: 'string', default: '30' },
    churn: { type: 'string', default: '20' },
    'churn-every': { type: 'string', default: '5' },
    settle: { type: 'string', default: '20' },
    scrapers: { type: 'string', default: '50' },
    'load-seconds': { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
})
const IMAGES = Number(values.images)
const MINUTES = Number(values.minutes)
const SAMPLE_S = Number(values.sample)
const CHURN = Number(values.churn)
const CHURN_EVERY_S = Number(values['churn-every'])
const SETTLE_S = Number(values.settle)
const SCRAPERS = Number(values.scrapers)
const LOAD_S = Number(values['load-seconds'])
for (const [k, v] of Object.entries({ IMAGES, MINUTES, SAMPLE_S, CHURN, CHURN_EVERY_S, SETTLE_S, SCRAPERS, LOAD_S }))
  if (!Number.isFinite(v) || v < 0) throw new Error(`${k.toLowerCase()} must be a number ≥ 0`)
/** human lines go to stderr when stdout carries the JSON figures */
const say = (line: string) => (values.json ? process.stderr : process.stdout).write(line + '\n')

export interface MemorySample {
  atS: number
  rssMiB: number
  heapUsedMiB: number
  heapTotalMiB: number
  images: number
  churned: number
}

async function scrapeMemory(url: string): Promise<{ heapUsed: number; heapTotal: number; images: number }> {
  const body = await (await fetch(`${url}/metrics`)).text()
  const value = (re: RegExp) => [...body.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0)
  return {
    heapUsed: value(/^gpuhost_nodejs_heap_size_used_bytes (\S+)$/gm) / 2 ** 20,
    heapTotal: value(/^gpuhost_nodejs_heap_size_total_bytes (\S+)$/gm) / 2 ** 20,
    images: value(/^gpuhost_docker_images\{[^}]*\} (\S+)$/gm),
  }
}

export interface LoadFigures {
  scrapers: number
  seconds: number
  scrapes: number
  /** how long the prune's plan over every image took to answer */
  pruneMs: number
  /** images the plan would remove, and those it keeps with a reason (fresh ones, here) */
  planned: number
  kept: number
  result: string
  /** the highest RSS while loaded */
  peakRssMiB: number
}

/** scrapers back to back on /metrics for LOAD_S, with one prune planning over every image meanwhile */
async function underLoad(agent: { url: string; token: string; pid: number }): Promise<LoadFigures> {
  // 5: reset the peak RSS (VmHWM) to the current RSS, so the peak read after is this phase's own
  writeFileSync(`/proc/${agent.pid}/clear_refs`, '5')
  const end = Date.now() + LOAD_S * 1000
  let scrapes = 0
  const scraper = async () => {
    while (Date.now() < end) {
      const res = await fetch(`${agent.url}/metrics`)
      if (!res.ok) throw new Error(`/metrics answered ${res.status}`)
      await res.text()
      scrapes++
    }
  }
  const pruneStarted = Date.now()
  const prune = post(`${agent.url}/v1/prune`, agent.token, { dryRun: true, targetPercent: 1 }).then((r) => {
    if (r.status !== 200) throw new Error(`the prune answered ${r.status}: ${JSON.stringify(r.body)}`)
    const { plan = [], kept = [], result } = r.body as { plan?: unknown[]; kept?: unknown[]; result: string }
    return { ms: Date.now() - pruneStarted, planned: plan.length, kept: kept.length, result }
  })
  const [done] = await Promise.all([prune, ...Array.from({ length: SCRAPERS }, scraper)])
  return {
    scrapers: SCRAPERS,
    seconds: LOAD_S,
    scrapes,
    pruneMs: done.ms,
    planned: done.planned,
    kept: done.kept,
    result: done.result,
    peakRssMiB: rssMiB(agent.pid, 'VmHWM'),
  }
}

const bench = benchRun()
const { t } = bench

/** the middle of a quarter's samples: a GC that has not yet run, or one large answer, moves it least */
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run -s build first`)
  const dockerd = await startDockerd(t, { diskMiB: 1024 })
  let next = 0
  const live: string[] = []
  const loadStarted = Date.now()
  live.push(
    ...loadManyImages(
      dockerd,
      'bench/churn',
      Array.from({ length: IMAGES }, () => next++),
    ),
  )
  say(`# ${IMAGES} images loaded into a private dockerd in ${((Date.now() - loadStarted) / 1e3).toFixed(1)} s`)

  const agent = await startAgent(
    t,
    {
      docker: { socket: dockerd.socket },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi', timeoutSeconds: 1 },
      prune: { schedule: null },
      prewarm: { schedule: null },
    },
    { env: { NODE_OPTIONS: serviceNodeOptions() } },
  )
  const started = Date.now()
  const deadline = started + 600_000
  while ((await scrapeMemory(agent.url)).images !== IMAGES) {
    if (Date.now() > deadline) throw new Error(`the agent did not report ${IMAGES} images within 10 min`)
    await sleep(500)
  }
  say(`# the agent reported all ${IMAGES} images ${((Date.now() - started) / 1e3).toFixed(1)} s after /healthz`)
  await sleep(SETTLE_S * 1000)
  const settled = await scrapeMemory(agent.url)
  const idle = { rssMiB: rssMiB(agent.pid), heapUsedMiB: settled.heapUsed, peakRssMiB: rssMiB(agent.pid, 'VmHWM') }
  say(
    `# settled (${SETTLE_S} s later): RSS ${idle.rssMiB.toFixed(1)} MiB, ` +
      `heap used ${idle.heapUsedMiB.toFixed(1)} MiB, ` +
      `peak RSS since start ${idle.peakRssMiB.toFixed(1)} MiB`,
  )

  const samples: MemorySample[] = []
  let churned = 0
  if (MINUTES > 0) {
    const churnStarted = Date.now()
    const end = churnStarted + MINUTES * 60_000
    let nextSample = churnStarted
    say(`# churn: every ${CHURN_EVERY_S} s, ${CHURN} images removed and ${CHURN} new ones loaded, for ${MINUTES} min`)
    say('   t s   RSS MiB  heap used MiB  heap total MiB  images seen  churned')
    while (Date.now() < end) {
      if (Date.now() >= nextSample) {
        const m = await scrapeMemory(agent.url)
        const s: MemorySample = {
          atS: (Date.now() - churnStarted) / 1e3,
          rssMiB: rssMiB(agent.pid),
          heapUsedMiB: m.heapUsed,
          heapTotalMiB: m.heapTotal,
          images: m.images,
          churned,
        }
        samples.push(s)
        say(
          [
            s.atS.toFixed(0).padStart(6),
            s.rssMiB.toFixed(1).padStart(9),
            s.heapUsedMiB.toFixed(1).padStart(14),
            s.heapTotalMiB.toFixed(1).padStart(15),
            String(s.images).padStart(12),
            String(s.churned).padStart(8),
          ].join(' '),
        )
        nextSample += SAMPLE_S * 1000
      }
      const step = Date.now()
      const gone = live.splice(0, CHURN)
      if (gone.length) dockerd.docker(['rmi', ...gone])
      live.push(
        ...loadManyImages(
          dockerd,
          'bench/churn',
          Array.from({ length: CHURN }, () => next++),
        ),
      )
      churned += CHURN
      await sleep(Math.max(0, CHURN_EVERY_S * 1000 - (Date.now() - step)))
    }
  }

  let load: LoadFigures | null = null
  if (SCRAPERS > 0 && LOAD_S > 0) {
    load = await underLoad(agent)
    say(
      `# under load (${LOAD_S} s): ${SCRAPERS} scrapers made ${load.scrapes} scrapes while a prune planned ` +
        `over every image (${load.result}: ${load.planned} planned, ${load.kept} kept; ${load.pruneMs} ms); ` +
        `peak RSS ${load.peakRssMiB.toFixed(1)} MiB`,
    )
  }

  const quarter = Math.max(1, Math.floor(samples.length / 4))
  const first = samples.slice(0, quarter)
  const last = samples.slice(-quarter)
  const compare = samples.length
    ? {
        firstQuarterRssMiB: median(first.map((s) => s.rssMiB)),
        lastQuarterRssMiB: median(last.map((s) => s.rssMiB)),
        firstQuarterHeapMiB: median(first.map((s) => s.heapUsedMiB)),
        lastQuarterHeapMiB: median(last.map((s) => s.heapUsedMiB)),
      }
    : null
  const peakRssMiB = rssMiB(agent.pid, 'VmHWM')
  if (compare) {
    const pct = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`
    const { firstQuarterRssMiB: rss0, lastQuarterRssMiB: rss1 } = compare
    say(
      `# first quarter vs last quarter (median of ${quarter} samples each): RSS ${rss0.toFixed(1)} -> ` +
        `${rss1.toFixed(1)} MiB (${pct(rss0, rss1)}), ` +
        `heap used ${compare.firstQuarterHeapMiB.toFixed(1)} -> ${compare.lastQuarterHeapMiB.toFixed(1)} MiB ` +
        `(${pct(compare.firstQuarterHeapMiB, compare.lastQuarterHeapMiB)}); ${churned} images churned; ` +
        `peak RSS ${peakRssMiB.toFixed(1)} MiB`,
    )
  }
  await agent.stop()
  if (values.json)
    process.stdout.write(
      JSON.stringify({ images: IMAGES, minutes: MINUTES, idle, load, peakRssMiB, compare, samples }) + '\n',
    )
}

bench.run(main)

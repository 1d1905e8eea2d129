// Plans a prune over 10,000 generated images (seeded, so runs compare) and prints the median time
// of several runs, with the plan's size, so a change to the planner can be weighed.
//
//   [IMAGES=10000] [RUNS=11] npx tsx bench/prune-plan.ts [--json]
import { planPrune } from '../src/prune/plan.js'
import { gen, generateImage, NOW } from '../test/support/generated-images.js'

const IMAGES = Number(process.env.IMAGES ?? 10_000)
const RUNS = Number(process.env.RUNS ?? 11)
/** runs before timing, so the figure is the planner's, not the JIT compiler's */
const WARMUP = 3

const g = gen(20261101)
const images = Array.from({ length: IMAGES }, () => generateImage(g))
const total = images.reduce((s, i) => s + i.sizeBytes, 0)
const input = {
  disk: { usedBytes: total, availBytes: Math.floor(total * 0.1) },
  images,
  policy: { lowPercent: 50, minAgeSeconds: 3600, protect: ['keep/*', '*:stable', 'ubuntu'], keepPerRepository: 2 },
  now: NOW,
  pullsInFlight: images.slice(0, 20).flatMap((i) => i.repoTags.slice(0, 1)),
}

// The first plan also parses every reference once (the planner keeps their forms, as the agent's
// later plans over the same images find them): printed apart, so the steady figure hides nothing.
const firstStarted = process.hrtime.bigint()
planPrune(input)
const firstMs = Number(process.hrtime.bigint() - firstStarted) / 1e6
for (let i = 0; i < WARMUP; i++) planPrune(input)
const times: number[] = []
let planned = 0
for (let run = 0; run < RUNS; run++) {
  const started = process.hrtime.bigint()
  const out = planPrune(input)
  times.push(Number(process.hrtime.bigint() - started) / 1e6)
  planned = out.plan.length
}
times.sort((a, b) => a - b)
const median = times[Math.floor(times.length / 2)]
const spread = `min ${times[0].toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms`
const line =
  `prune plan over ${IMAGES} images: median ${median.toFixed(1)} ms over ${RUNS} runs after ${WARMUP} warm-up runs ` +
  `(${spread}); ${planned} planned, ${IMAGES - planned} kept; the first plan, references not yet parsed: ` +
  `${firstMs.toFixed(1)} ms`
if (process.argv.includes('--json')) {
  process.stderr.write(line + '\n')
  process.stdout.write(JSON.stringify({ images: IMAGES, runs: RUNS, medianMs: median, firstMs, planned }) + '\n')
} else console.log(line)

// Parse time of `nvidia-smi -q -x` for an 8-GPU host. The document is DERIVED from the real dual
// RTX A5000 capture (test/fixtures/nvidia-smi/xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml): its
// two <gpu> elements are repeated to make eight, with distinct bus ids and uuids, and
// <attached_gpus> set to 8. Everything else is the capture as it is.
// Run: npx tsx bench/gpu-parse.ts [iterations] [--json]
import { readFileSync } from 'node:fs'
import { parseNvidiaSmiXml } from '../src/gpu/parse.js'

const CAPTURE = new URL('../test/fixtures/nvidia-smi/xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml', import.meta.url)

function eightGpuDocument(): string {
  const xml = readFileSync(CAPTURE, 'utf8')
  const gpus = [...xml.matchAll(/<gpu id="[^"]*">[\s\S]*?\n\t<\/gpu>/g)].map((m) => m[0])
  if (gpus.length !== 2) throw new Error(`expected 2 <gpu> elements in the capture, found ${gpus.length}`)
  const eight = Array.from({ length: 8 }, (_, i) =>
    gpus[i % 2]
      .replace(/<gpu id="[^"]*">/, `<gpu id="00000000:${(0x10 + i).toString(16).toUpperCase()}:00.0">`)
      .replace(
        /<uuid>GPU-([0-9a-f-]+)..<\/uuid>/,
        (_m, head) => `<uuid>GPU-${head}${i.toString(16).padStart(2, '0')}</uuid>`,
      ),
  )
  const start = xml.indexOf(gpus[0])
  const end = xml.indexOf(gpus[1]) + gpus[1].length
  return xml.slice(0, start) + eight.join('\n\t') + xml.slice(end)
}

const json = process.argv.includes('--json')
const iterations = Number(process.argv.slice(2).find((a) => a !== '--json') ?? 1000)
/** human lines go to stderr when stdout carries the JSON figures */
const say = (line: string) => (json ? process.stderr : process.stdout).write(line + '\n')
const doc = eightGpuDocument().replace(/<attached_gpus>\d+<\/attached_gpus>/, '<attached_gpus>8</attached_gpus>')
const check = parseNvidiaSmiXml(doc)
if (check.gpus.length !== 8 || new Set(check.gpus.map((g) => g.uuid)).size !== 8)
  throw new Error('the derived document does not hold 8 distinct GPUs')

for (let i = 0; i < 50; i++) parseNvidiaSmiXml(doc) // warm-up
const times: number[] = []
const started = process.hrtime.bigint()
for (let i = 0; i < iterations; i++) {
  const t0 = process.hrtime.bigint()
  parseNvidiaSmiXml(doc)
  times.push(Number(process.hrtime.bigint() - t0) / 1e6)
}
const totalMs = Number(process.hrtime.bigint() - started) / 1e6
times.sort((a, b) => a - b)
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(3)
say(`document: 8 GPUs derived from the dual RTX A5000 capture, ${(doc.length / 1024).toFixed(1)} KiB`)
say(`parses: ${iterations}, total ${totalMs.toFixed(0)} ms, mean ${(totalMs / iterations).toFixed(3)} ms/parse`)
const max = times[times.length - 1].toFixed(3)
say(`per parse: p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, p99 ${pct(0.99)} ms, max ${max} ms`)

// The reference: one linear regex scan over the same document (every tag matched once, nothing built),
// the least any parse of it can cost.
const scanTimes: number[] = []
for (let i = 0; i < iterations; i++) {
  const t0 = process.hrtime.bigint()
  let tags = 0
  for (const _ of doc.matchAll(/<[^>]+>/g)) tags++
  if (tags === 0) throw new Error('no tags')
  scanTimes.push(Number(process.hrtime.bigint() - t0) / 1e6)
}
const scanMean = scanTimes.reduce((a, b) => a + b, 0) / iterations
say(
  `side by side: parse mean ${(totalMs / iterations).toFixed(3)} ms; one linear regex scan of the same ` +
    `document ${scanMean.toFixed(3)} ms`,
)
if (json) {
  const figures = {
    iterations,
    documentKiB: doc.length / 1024,
    parseMeanMs: totalMs / iterations,
    scanMeanMs: scanMean,
  }
  process.stdout.write(JSON.stringify(figures) + '\n')
}

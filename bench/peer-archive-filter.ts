// The filter every peer archive passes on its way into `docker load`, against the same bytes passed
// through untouched: throughput (MiB/s) and the process's peak RSS, for an archive in the legacy
// `docker save` layout with LAYERS layers of LAYER_MIB MiB each. The filter must not be what limits a
// peer transfer, and must not hold the archive in memory.
import { createHash, randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { filterPeerArchive } from '../src/peers/archive-filter.js'

const LAYERS = Number(process.env.LAYERS ?? 4)
const LAYER_MIB = Number(process.env.LAYER_MIB ?? 256)
const RUNS = Number(process.env.RUNS ?? 3)
/** what a socket read delivers, about: the filter's cost is per chunk as much as per byte */
const CHUNK = randomBytes(64 * 1024)
const CHUNKS_PER_MIB = (1024 * 1024) / CHUNK.length

const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers' } }))
const configHex = createHash('sha256').update(config).digest('hex')

/** the archive, generated as it is read: layers are CHUNK repeated */
function archive(): Readable {
  const pack = tar.pack()
  void (async () => {
    const layers: string[] = []
    for (let i = 0; i < LAYERS; i++) {
      const name = `${i.toString(16).padStart(64, '0')}/layer.tar`
      layers.push(name)
      const sink = pack.entry({ name, size: LAYER_MIB * 1024 * 1024 }) as unknown as Writable
      for (let m = 0; m < LAYER_MIB * CHUNKS_PER_MIB; m++)
        if (!sink.write(CHUNK)) await new Promise((r) => sink.once('drain', r))
      await new Promise((r) => sink.end(r))
    }
    pack.entry({ name: `${configHex}.json` }, config)
    pack.entry(
      { name: 'manifest.json' },
      JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['a:b'], Layers: layers }]),
    )
    pack.entry({ name: 'repositories' }, '{"a":{"b":"x"}}')
    pack.finalize()
  })()
  return pack as unknown as Readable
}

async function drain(source: Readable): Promise<number> {
  let bytes = 0
  await pipeline(
    source,
    new Writable({
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length
        done()
      },
    }),
  )
  return bytes
}

async function time(label: string, make: () => Readable): Promise<void> {
  const rates: number[] = []
  let bytes = 0
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint()
    bytes = await drain(make())
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    rates.push(bytes / 1024 / 1024 / seconds)
  }
  rates.sort((a, b) => a - b)
  const rss = process.resourceUsage().maxRSS / 1024
  console.log(
    `${label.padEnd(14)} ${(bytes / 1024 / 1024).toFixed(0)} MiB  median ${rates[rates.length >> 1].toFixed(0)} MiB/s` +
      `  peak RSS so far ${rss.toFixed(0)} MiB`,
  )
}

console.log(`archive: ${LAYERS} layers × ${LAYER_MIB} MiB, ${RUNS} runs each`)
await time('passthrough', () => archive())
await time('filtered', () => filterPeerArchive(archive(), `sha256:${configHex}`))

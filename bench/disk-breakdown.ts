// How long the runtime's disk accounting (Docker's /system/df plus one inspect and stat per
// container for its log) takes on a private dockerd with N images and N exited containers, against
// `docker system df` itself. The breakdown runs on its own slow interval for this reason.
//
//   npx tsx bench/disk-breakdown.ts [--images 50] [--containers 50] [--rounds 5]
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { startDockerd } from '../test/harness/dockerd.js'
import { makeImage } from '../test/harness/images.js'
import { makeRunnableImage } from '../test/support/docker-images.js'
import { runtimeFor } from '../test/support/runtime.js'
import { benchRun } from './support.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '50' },
    containers: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '5' },
  },
})
const images = Number(values.images)
const containers = Number(values.containers)
const rounds = Number(values.rounds)

const bench = benchRun()
const { t } = bench

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main(): Promise<void> {
  const dockerd = await startDockerd(t, { diskMiB: 512 + images })
  for (let i = 0; i < images; i++) makeImage(dockerd, { ref: `bench/img:${i}`, sizeBytes: 256 * 1024 })
  makeRunnableImage(dockerd, 'bench/run:1', 1024 * 1024)
  for (let i = 0; i < containers; i++) dockerd.docker(['run', '--network', 'none', 'bench/run:1', '0'])
  const runtime = runtimeFor(dockerd)
  const ours: number[] = []
  const cli: number[] = []
  for (let r = 0; r < rounds; r++) {
    let started = process.hrtime.bigint()
    await runtime.diskUsage()
    ours.push(Number(process.hrtime.bigint() - started) / 1e6)
    started = process.hrtime.bigint()
    execFileSync('docker', ['-H', dockerd.host, 'system', 'df'])
    cli.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  console.log(`${images} images, ${containers} exited containers, ${rounds} rounds`)
  console.log(`runtime.diskUsage() (df + inspect + stat per container): median ${median(ours).toFixed(1)} ms`)
  console.log(`docker system df (CLI process included):                 median ${median(cli).toFixed(1)} ms`)
}

bench.run(main)

// The same set of images pulled (a) by `gpuhost prewarm` and (b) by a sequential `docker pull`
// loop like the cron scripts people use, from the same local registry into the same private
// dockerd, in the same run; every image is removed between runs. Prints both times and the ratio.
//
//   npm run -s build && npx tsx bench/prewarm-vs-docker-pull.ts [--images N] [--mib M] [--rounds R] [--concurrency C]
//
// Needs root, dockerd, docker and docker-registry (see .ci/run).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'
import { CLI } from '../test/harness/agent.js'
import { startDockerd } from '../test/harness/dockerd.js'
import { makeImage, pushImage } from '../test/harness/images.js'
import { startRegistry } from '../test/harness/registry.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '6' },
    mib: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '3' },
  },
})
const count = Number(values.images)
const mib = Number(values.mib)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)

const teardowns: (() => void | Promise<void>)[] = []
const t = {
  teardown: (fn: () => void | Promise<void>) => {
    teardowns.push(fn)
  },
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run -s build first`)
  const dockerd = await startDockerd(t, { diskMiB: Math.max(512, count * mib * 3 + 256) })
  const registry = await startRegistry(t)
  const refs: string[] = []
  for (let i = 0; i < count; i++) {
    // Random content: nothing shared between images, nothing compressible.
    const name = `bench/img${i}:1`
    makeImage(dockerd, { ref: name, sizeBytes: mib * 1024 * 1024 })
    refs.push(pushImage(dockerd, name, registry.host))
    dockerd.docker(['rmi', name])
  }
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'))
  teardowns.push(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'agent.yaml')
  writeFileSync(
    config,
    stringify({
      docker: { socket: dockerd.socket },
      stateDir: join(dir, 'state'),
      tokenFile: null,
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi', timeoutSeconds: 1 },
      prewarm: { schedule: null, concurrency, images: refs },
    }),
  )
  const removeAll = () => {
    const ids = dockerd.docker(['images', '-q']).split('\n').filter(Boolean)
    if (ids.length) dockerd.docker(['rmi', ...new Set(ids)])
  }
  const runPrewarm = () => {
    const started = process.hrtime.bigint()
    const out = execFileSync(process.execPath, [CLI, '--json', 'prewarm', '--config', config], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    })
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const results = JSON.parse(out).results as { status: string }[]
    if (results.some((r) => r.status !== 'pulled')) throw new Error(`prewarm did not pull everything: ${out}`)
    return seconds
  }
  const runLoop = () => {
    const started = process.hrtime.bigint()
    for (const ref of refs) execFileSync('docker', ['-H', dockerd.host, 'pull', '--quiet', ref], { stdio: 'ignore' })
    return Number(process.hrtime.bigint() - started) / 1e9
  }
  const prewarmTimes: number[] = []
  const loopTimes: number[] = []
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always meets a warmer page cache.
    const order = round % 2 === 0 ? (['prewarm', 'loop'] as const) : (['loop', 'prewarm'] as const)
    for (const which of order) {
      removeAll()
      const s = which === 'prewarm' ? runPrewarm() : runLoop()
      ;(which === 'prewarm' ? prewarmTimes : loopTimes).push(s)
      process.stderr.write(`round ${round + 1}: ${which} ${s.toFixed(2)} s\n`)
    }
  }
  const a = median(prewarmTimes)
  const b = median(loopTimes)
  const dockerdVersion = execFileSync('docker', ['-H', dockerd.host, 'version', '--format', '{{.Server.Version}}'], {
    encoding: 'utf8',
  }).trim()
  console.log(
    `images: ${count} × ${mib} MiB (random, incompressible), registry ${registry.host} on loopback, ` +
      `private dockerd ${dockerdVersion}`,
  )
  console.log(`rounds: ${rounds} (median shown), images removed before every run`)
  const each = (times: number[]) => times.map((x) => x.toFixed(2)).join(', ')
  console.log(`(a) gpuhost prewarm, concurrency ${concurrency}: ${a.toFixed(2)} s   [${each(prewarmTimes)}]`)
  console.log(`(b) sequential docker pull loop:        ${b.toFixed(2)} s   [${each(loopTimes)}]`)
  console.log(`ratio (b)/(a): ${(b / a).toFixed(2)}× — above 1 means gpuhost prewarm was faster`)
}

main().then(
  async () => {
    for (const fn of teardowns.reverse()) await fn()
    process.exit(0)
  },
  async (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`)
    for (const fn of teardowns.reverse()) await fn()
    process.exit(1)
  },
)

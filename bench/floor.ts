// The memory floor the agent's goals stand on: the RSS of a node process that has imported the
// packages the agent is built on and then idles, beside a node process that imports nothing. Both
// run as the agent runs in service (the systemd unit's NODE_OPTIONS) and are read from /proc
// (VmRSS) after the same quiet time as the idle agent in bench/startup.ts; each figure is the
// median of --samples processes, started one after another.
//
//   npx tsx bench/floor.ts [--samples 3] [--idle-seconds 10] [--json]
//
// ws is left out: the agent loads it only when a coordinator is configured, and the benches run
// the agent without one.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { percentile, rssMiB, serviceNodeOptions } from './support.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

/** the packages in the floor, in the order the process imports them */
export const FLOOR_PACKAGES = [
  'zod',
  'pino',
  'yaml',
  'prom-client',
  'commander',
  'dockerode',
  'node-cron',
  'systeminformation',
] as const

// Bound on waiting for the imports only, so that a broken node_modules ends the bench instead of hanging it.
const READY_LIMIT_MS = 60_000

export interface Floor {
  packages: string[]
  nodeOptions: string
  idleSeconds: number
  samples: number
  /** median VmRSS of the process that imported FLOOR_PACKAGES */
  floorMiB: number
  floorSamplesMiB: number[]
  /** median VmRSS of the process that imported nothing */
  nodeAloneMiB: number
  nodeAloneSamplesMiB: number[]
}

/**
 * One ESM process that imports each package (none is used: a package's cost at rest is what it
 * loads), says so on stdout, then keeps its event loop alive; its VmRSS after idleSeconds more.
 */
async function idleRss(packages: readonly string[], idleSeconds: number): Promise<number> {
  const script = [
    ...packages.map((p) => `await import(${JSON.stringify(p)})`),
    "process.stdout.write('ready\\n')",
    'setInterval(() => {}, 1 << 30)',
  ].join('; ')
  // cwd: an -e module resolves bare names from the working directory, here the project's node_modules
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: serviceNodeOptions() },
  })
  let output = ''
  child.stderr.on('data', (d) => (output += d))
  try {
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`no imports after ${READY_LIMIT_MS} ms:\n${output}`)),
        READY_LIMIT_MS,
      )
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer)
          ready()
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        fail(new Error(`the floor process exited with ${code} before its imports were done:\n${output}`))
      })
    })
    await sleep(idleSeconds * 1000)
    const rss = rssMiB(child.pid!)
    if (!Number.isFinite(rss)) throw new Error(`no VmRSS in /proc/${child.pid}/status`)
    return rss
  } finally {
    child.kill('SIGKILL')
  }
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  )

export async function measureFloor(samples: number, idleSeconds: number): Promise<Floor> {
  const floorSamplesMiB: number[] = []
  const nodeAloneSamplesMiB: number[] = []
  for (let i = 0; i < samples; i++) {
    floorSamplesMiB.push(await idleRss(FLOOR_PACKAGES, idleSeconds))
    nodeAloneSamplesMiB.push(await idleRss([], idleSeconds))
  }
  return {
    packages: [...FLOOR_PACKAGES],
    nodeOptions: serviceNodeOptions(),
    idleSeconds,
    samples,
    floorMiB: median(floorSamplesMiB),
    floorSamplesMiB,
    nodeAloneMiB: median(nodeAloneSamplesMiB),
    nodeAloneSamplesMiB,
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string', default: '3' },
      'idle-seconds': { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
    },
  })
  const samples = Number(values.samples)
  const idleSeconds = Number(values['idle-seconds'])
  if (!Number.isInteger(samples) || samples < 1) {
    console.error(`--samples must be a positive integer, not ${values.samples}`)
    process.exit(2)
  }
  if (!Number.isFinite(idleSeconds) || idleSeconds < 0) {
    console.error(`--idle-seconds must be a number ≥ 0, not ${values['idle-seconds']}`)
    process.exit(2)
  }
  const f = await measureFloor(samples, idleSeconds)
  const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ')
  const say = (line: string) => (values.json ? process.stderr : process.stdout).write(line + '\n')
  say(
    `memory floor, node ${process.version}, NODE_OPTIONS=${f.nodeOptions || '(none)'}, ` +
      `VmRSS after ${idleSeconds} s idle, median of ${samples}`,
  )
  say(`imported ${f.packages.join(', ')}: ${f.floorMiB.toFixed(1)} MiB (${list(f.floorSamplesMiB)})`)
  say(`node alone: ${f.nodeAloneMiB.toFixed(1)} MiB (${list(f.nodeAloneSamplesMiB)})`)
  if (values.json) process.stdout.write(JSON.stringify(f) + '\n')
}

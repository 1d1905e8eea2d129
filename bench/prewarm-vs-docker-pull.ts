// The same set of images pulled, in the same run, from the same local registry into the same private
// dockerd, every image removed before each run:
//   (a) `gpuhost prewarm` (the CLI: node start-up included),
//   (b) the daemon: POST /v1/prewarm to a running agent, which answers when every pull is done,
//   (c) `xargs -P C docker pull`: docker pulls of the same concurrency C, the reference,
//   (d) a sequential `docker pull` loop, like the cron scripts people use.
// Prints the median of each and its ratio to (c).
//
//   npm run -s build && npx tsx bench/prewarm-vs-docker-pull.ts [--images N] [--mib M] [--rounds R]
//                                                              [--concurrency C] [--json]
//
// Needs root, dockerd, docker and docker-registry (see .ci/run).
import { execFileSync } from 'node:child_process'
import { request } from 'node:http'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'
import { CLI, startAgent } from '../test/harness/agent.js'
import { startDockerd } from '../test/harness/dockerd.js'
import { makeImage, pushImage } from '../test/harness/images.js'
import { startRegistry } from '../test/harness/registry.js'
import type { PrewarmReport } from '../src/prewarm/result.js'
import { benchRun } from './support.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '6' },
    mib: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
})
const count = Number(values.images)
const mib = Number(values.mib)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)
/** human lines go to stderr when stdout carries the JSON figures */
const say = (line: string) => (values.json ? process.stderr : process.stdout).write(line + '\n')

const bench = benchRun()
const { t } = bench

/**
 * POST on a connection of its own, closed after the answer: a fetch reusing the previous round's
 * idle keep-alive connection now and then meets the server closing it, and a bench must not fail on that.
 */
function postOnce(url: string, token: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body)
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, connection: 'close' },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

type Method = 'cli' | 'daemon' | 'parallel' | 'loop'
const LABEL: Record<Method, string> = {
  cli: `(a) gpuhost prewarm (CLI), concurrency ${concurrency}`,
  daemon: `(b) POST /v1/prewarm to a running agent, concurrency ${concurrency}`,
  parallel: `(c) xargs -P${concurrency} docker pull`,
  loop: '(d) sequential docker pull loop',
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
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const common = {
    docker: { socket: dockerd.socket },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi', timeoutSeconds: 1 },
  }
  const config = join(dir, 'agent.yaml')
  writeFileSync(
    config,
    stringify({
      ...common,
      stateDir: join(dir, 'state'),
      tokenFile: null,
      prewarm: { schedule: null, concurrency, images: refs },
    }),
  )
  // The daemon wants nothing at start (it would pull at once): the images come in each request.
  const agent = await startAgent(t, { ...common, prewarm: { schedule: null, concurrency, images: [] } })

  const removeAll = () => {
    const ids = dockerd.docker(['images', '-q']).split('\n').filter(Boolean)
    if (ids.length) dockerd.docker(['rmi', ...new Set(ids)])
  }
  const timed = async (fn: () => unknown): Promise<number> => {
    const started = process.hrtime.bigint()
    await fn()
    return Number(process.hrtime.bigint() - started) / 1e9
  }
  /** the report's own duration per method: the wall time less it is start-up, transport and exit */
  const reported: Record<'cli' | 'daemon', number[]> = { cli: [], daemon: [] }
  const allPulled = (report: PrewarmReport, what: string, via: 'cli' | 'daemon') => {
    const { results } = report
    if (results.length !== count || results.some((r) => r.status !== 'pulled'))
      throw new Error(`${what} did not pull everything: ${JSON.stringify(results)}`)
    reported[via].push(report.durationSeconds)
  }
  const run: Record<Method, () => Promise<number>> = {
    cli: () =>
      timed(() => {
        const out = execFileSync(process.execPath, [CLI, '--json', 'prewarm', '--config', config], {
          encoding: 'utf8',
          maxBuffer: 16 * 1024 * 1024,
        })
        allPulled(JSON.parse(out) as PrewarmReport, 'gpuhost prewarm', 'cli')
      }),
    daemon: () =>
      timed(async () => {
        const res = await postOnce(`${agent.url}/v1/prewarm`, agent.token, { images: refs })
        if (res.status !== 200) throw new Error(`POST /v1/prewarm answered ${res.status}: ${JSON.stringify(res.body)}`)
        allPulled(res.body as PrewarmReport, 'POST /v1/prewarm', 'daemon')
      }),
    parallel: () =>
      timed(() =>
        execFileSync('sh', ['-c', `xargs -n1 -P${concurrency} docker -H "$DOCKER_SOCK" pull --quiet >/dev/null`], {
          input: refs.join('\n') + '\n',
          env: { ...process.env, DOCKER_SOCK: dockerd.host },
          stdio: 'pipe',
        }),
      ),
    loop: () =>
      timed(() => {
        for (const ref of refs)
          execFileSync('docker', ['-H', dockerd.host, 'pull', '--quiet', ref], { stdio: 'ignore' })
      }),
  }
  const methods: Method[] = ['cli', 'daemon', 'parallel', 'loop']
  const times: Record<Method, number[]> = { cli: [], daemon: [], parallel: [], loop: [] }
  for (let round = 0; round < rounds; round++) {
    // Rotate which goes first, so none always meets a warmer page cache.
    const order = methods.map((_, i) => methods[(i + round) % methods.length])
    for (const which of order) {
      removeAll()
      const s = await run[which]()
      times[which].push(s)
      process.stderr.write(`round ${round + 1}: ${which} ${s.toFixed(2)} s\n`)
    }
  }
  await agent.stop()
  const dockerdVersion = dockerd.docker(['version', '--format', '{{.Server.Version}}']).trim()
  const medians = Object.fromEntries(methods.map((m) => [m, median(times[m])])) as Record<Method, number>
  say(
    `images: ${count} × ${mib} MiB (random, incompressible), registry ${registry.host} on loopback, ` +
      `private dockerd ${dockerdVersion}; ${rounds} rounds (median shown), images removed before every run`,
  )
  const width = Math.max(...methods.map((m) => LABEL[m].length))
  for (const m of methods) {
    const each = times[m].map((x) => x.toFixed(2)).join(', ')
    const ratio = (medians[m] / medians.parallel).toFixed(2)
    say(`${LABEL[m].padEnd(width)}  ${medians[m].toFixed(2)} s  ${ratio}× (c)  [${each}]`)
  }
  const overhead = {
    cli: median(times.cli.map((x, i) => x - reported.cli[i])),
    daemon: median(times.daemon.map((x, i) => x - reported.daemon[i])),
  }
  say(
    `outside the prewarm itself (wall time less the report's durationSeconds, median): ` +
      `CLI ${overhead.cli.toFixed(2)} s (node start, loading, config, exit); daemon ${overhead.daemon.toFixed(2)} s`,
  )
  if (values.json)
    process.stdout.write(JSON.stringify({ count, mib, concurrency, rounds, medians, times, overhead }) + '\n')
}

bench.run(main)

// A stalled pull: the registry (the harness's real docker-registry) is frozen with SIGSTOP while
// it sends a layer, so the connection stays open and no byte arrives. The attempt is cut after
// prewarm.stallSeconds, the registry is let go (SIGCONT) before the retry, and the retry pulls.
import t from 'tap'
import { pino } from 'pino'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { EventBus } from '../../src/core/events.js'
import { JobRunner } from '../../src/core/job-runner.js'
import { runPrewarm } from '../../src/prewarm/executor.js'
import { buildPrewarmDeps } from '../../src/prewarm/setup.js'
import { createRuntime } from '../../src/runtime/create.js'
import { PullsInFlight } from '../../src/core/pulls-in-flight.js'
import { checkImageCompat } from '../../src/compat/check.js'
import type { GpuFacts } from '../../src/core/snapshot.js'

const MiB = 1024 * 1024
/** large enough that the registry is frozen well before the layer is all sent */
const IMAGE_BYTES = 64 * MiB

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('a registry frozen mid-blob: the attempt is cut after stallSeconds and retried', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 400 })
    const registry = await startRegistry(t)
    makeImage(dockerd, { ref: 'team/stall:1', sizeBytes: IMAGE_BYTES })
    const image = pushImage(dockerd, 'team/stall:1', registry.host)
    dockerd.docker(['rmi', 'team/stall:1'])

    const config = parseConfig(agentConfigSchema, {
      docker: { socket: dockerd.socket },
      prune: { schedule: null },
      // no outer bound: only the stall cuts the attempt
      prewarm: { schedule: null, retries: 2, stallSeconds: 2, attemptTimeoutSeconds: null },
    })
    const attempts: string[] = []
    const log = pino(
      { level: 'warn' },
      {
        write: (line: string) => {
          const entry = JSON.parse(line)
          if (entry.msg !== 'pull attempt failed') return
          attempts.push(entry.err)
          // let the registry go before the retry starts
          registry.resume()
        },
      },
    )
    const bus = new EventBus()
    const progress: { bytesDone: number; bytesTotal: number }[] = []
    bus.subscribe((e) => {
      if (e.type === 'pull.progress') progress.push({ bytesDone: e.data.bytesDone, bytesTotal: e.data.bytesTotal })
    })
    const deps = buildPrewarmDeps({
      config,
      log,
      bus,
      runner: new JobRunner(),
      runtime: createRuntime(config),
      pulls: new PullsInFlight(),
      gpu: async (): Promise<GpuFacts> => ({ available: false, reason: 'not needed here', gpus: [] }),
      evaluate: checkImageCompat,
    })
    t.teardown(() => deps.close())
    let pausedAt: { bytesDone: number; bytesTotal: number } | null = null
    const report = await runPrewarm(
      {
        ...deps,
        retryMinMs: 200,
        // the first report of bytes downloaded: the registry is in the middle of sending the layer
        onProgress: (_ref, p) => {
          if (pausedAt === null && p.bytesDone > 0 && p.bytesDone < p.bytesTotal) {
            pausedAt = { bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }
            registry.pause()
          }
        },
      },
      { images: [image], trigger: 'cli' },
    )
    t.ok(pausedAt, 'the registry was frozen while the layer was being sent')
    t.equal(attempts.length, 1, 'one attempt was cut')
    t.match(attempts[0], /stalled: no progress for 2 s/, 'cut for the stall, not for its length')
    t.equal(report.results[0].status, 'pulled', report.results[0].reason)
    t.ok(
      dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').includes(image),
      'the image is there after the retry',
    )
    const last = progress.at(-1)!
    t.equal(last.bytesDone, last.bytesTotal, 'progress events carry bytes done and total; the last is complete')
    t.ok(last.bytesTotal >= IMAGE_BYTES * 0.9, `total ${last.bytesTotal} bytes is the layer's compressed size`)
  })
}

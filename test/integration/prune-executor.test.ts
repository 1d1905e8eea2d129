// The prune executor against a private dockerd on a small loop disk filled with real images: the
// image facts come from a direct read of that daemon (with first-seen and last-used times chosen
// here), so these tests need no inventory and can drive the executor between plan and removal.
import t from 'tap'
import { auditLog } from '../support/audit-log.js'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage, createContainer } from '../harness/images.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import { SnapshotStore } from '../../src/core/snapshot.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import type { PruneDeps, PruneRequest, PruneHooks } from '../../src/prune/executor-deps.js'
import { runtimeFor } from '../support/runtime.js'
import { dockerClient, makeRunnableImage, readImageFacts, type Times } from '../support/docker-images.js'

const MiB = 1024 * 1024
const SIZE = 10 * MiB
const now = () => new Date()
const BASE = Date.now()
const daysAgo = (d: number) => new Date(BASE - d * 86400_000).toISOString()

/** first seen and last used, by tag; untagged images were seen 25 days ago and used yesterday */
const TIMES: Record<string, Times> = {
  'lru/app:t1': { firstSeen: daysAgo(30), lastUsed: daysAgo(10) },
  'lru/app:t2': { firstSeen: daysAgo(29), lastUsed: daysAgo(8) },
  'lru/app:t3': { firstSeen: daysAgo(28), lastUsed: null },
  'lru/app:t4': { firstSeen: daysAgo(27), lastUsed: daysAgo(9) },
  'lru/app:t5': { firstSeen: daysAgo(26), lastUsed: daysAgo(20) },
  'young/x:1': { firstSeen: new Date(BASE - 60_000).toISOString(), lastUsed: null },
}
const timesOf = (image: { tags: string[] }): Times =>
  TIMES[image.tags[0]] ?? { firstSeen: daysAgo(25), lastUsed: daysAgo(1) }

function setup(dockerd: PrivateDockerd, policy: Record<string, unknown> = {}) {
  const docker = dockerClient(dockerd)
  const bus = new EventBus()
  const events: AgentEvent[] = []
  bus.subscribe((e) => events.push(e))
  const metrics = createAgentMetrics(
    { snapshot: () => new SnapshotStore().get(), version: 'test' },
    { processMetrics: false },
  )
  bus.subscribe(metrics.onEvent)
  const { log, audit } = auditLog()
  const config = parseConfig(agentConfigSchema, {
    prune: { minAgeSeconds: 3600, protect: ['keep/*'], keepPerRepository: 1, ...policy },
  })
  const deps: PruneDeps = {
    runtime: runtimeFor(dockerd),
    measure: readFilesystem,
    bus,
    log,
    now,
    policy: config.prune,
    pullsInFlight: () => [],
    sharedSizes: true,
  }
  const prune = async (req: Partial<PruneRequest> & { targetPercent: number }, hooks?: PruneHooks) =>
    runPrune(
      deps,
      { images: await readImageFacts(docker, timesOf), diskPath: dockerd.dataRoot },
      { trigger: 'cli', dryRun: false, ...req },
      hooks,
    )
  return { docker, events, audit, prune, metrics: () => metrics.registry.metrics() }
}

/** the usage percent at which about `images` images of SIZE must go */
async function targetFreeing(dockerd: PrivateDockerd, images: number): Promise<number> {
  const d = await readFilesystem(dockerd.dataRoot)
  return Math.floor(((d.usedBytes - images * SIZE) / (d.usedBytes + d.availBytes)) * 100 * 100) / 100
}

const tags = (dockerd: PrivateDockerd) =>
  dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').sort()

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('prunes least recently used first, down to the target, and keeps what is needed', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    makeImage(dockerd, { ref: 'dangle/x:1', sizeBytes: SIZE })
    makeImage(dockerd, { ref: 'dangle/x:1', sizeBytes: SIZE }) // the first one is now dangling
    for (const n of [1, 2, 3, 4, 5]) makeImage(dockerd, { ref: `lru/app:t${n}`, sizeBytes: SIZE })
    makeImage(dockerd, { ref: 'keep/x:1', sizeBytes: SIZE })
    makeImage(dockerd, { ref: 'young/x:1', sizeBytes: SIZE })
    makeRunnableImage(dockerd, 'run/x:1')
    makeRunnableImage(dockerd, 'exited/x:1')
    dockerd.docker(['run', '-d', '--network', 'none', 'run/x:1'])
    dockerd.docker(['run', '--network', 'none', 'exited/x:1', '0'])
    const { events, audit, prune, metrics } = setup(dockerd)
    const all = tags(dockerd)
    const target = await targetFreeing(dockerd, 2.5)

    const dry = await prune({ dryRun: true, targetPercent: target })
    t.same(
      dry.plan.map((p) => p.refs[0] ?? 'dangling'),
      ['dangling', 'lru/app:t3', 'lru/app:t1'],
      'dangling, never used, then least recently used',
    )
    t.same(dry.removed, [])
    t.same(tags(dockerd), all, 'the dry run removed nothing')
    t.ok(
      dry.plan.every((p) => p.expectedFreedBytes >= SIZE),
      'shared sizes read from /system/df: each image frees its own layer',
    )

    const real = await prune({ targetPercent: target })
    t.equal(real.result, 'ok')
    t.same(real.plan, dry.plan, 'the real run planned what the dry run showed')
    t.same(
      real.removed.map((p) => p.id),
      dry.plan.map((p) => p.id),
      'and removed it, in order',
    )
    t.ok(
      real.after!.usedPercent <= target,
      `usage ${real.before!.usedPercent} % → ${real.after!.usedPercent} %, target ${target} %`,
    )
    t.ok(real.freedBytes >= real.needBytes, `freed ${real.freedBytes} ≥ needed ${real.needBytes}`)
    t.ok(real.enough)
    const reasons = Object.fromEntries(real.kept.map((k) => [k.refs[0], k.reason]))
    t.equal(reasons['run/x:1'], 'in use by a container', 'a running container keeps its image')
    t.equal(reasons['exited/x:1'], 'in use by a container', 'an exited container keeps its image')
    t.equal(reasons['keep/x:1'], 'protected by "keep/*"')
    t.match(reasons['young/x:1'], /younger than minAgeSeconds/)
    t.equal(reasons['lru/app:t5'], 'among the newest 1 of lru/app')
    t.same(
      tags(dockerd),
      all.filter((r) => !['<none>:<none>', 'lru/app:t3', 'lru/app:t1'].includes(r)),
      'exactly the plan is gone',
    )

    t.same(
      audit.map((a) => [a.outcome, a.tags, a.trigger]),
      [
        ['removed', [], 'cli'],
        ['removed', ['lru/app:t3'], 'cli'],
        ['removed', ['lru/app:t1'], 'cli'],
      ],
      'an audit line per removed image',
    )
    t.ok(
      audit.every((a) => typeof a.id === 'string' && typeof a.sizeBytes === 'number' && typeof a.reason === 'string'),
    )
    t.same(
      events.map((e) => e.type),
      [
        'prune.started',
        'prune.finished',
        'prune.started',
        'prune.image',
        'prune.image',
        'prune.image',
        'prune.finished',
      ],
    )
    const finished = events.at(-1)!.data
    t.match(finished, {
      trigger: 'cli',
      dryRun: false,
      result: 'ok',
      removedCount: 3,
      freedBytes: real.freedBytes,
      needBytes: real.needBytes,
    })

    const cannot = await prune({ targetPercent: 0 })
    t.equal(cannot.result, 'not_enough', 'down to 0 % is impossible: said loudly')
    t.notOk(cannot.enough)
    t.same(
      cannot.removed.map((p) => p.refs[0]),
      ['lru/app:t4', 'lru/app:t2'],
      'it still removed what it could',
    )
    const text = await metrics()
    t.match(text, /gpuhost_prune_runs_total\{trigger="cli",result="not_enough"\} 1/)
    t.match(text, /gpuhost_prune_runs_total\{trigger="cli",result="dry_run"\} 1/)
    t.match(text, /gpuhost_prune_images_removed_total 5/)
  })

  t.test(
    'a container created from a planned image between planning and removal: the image survives, reported skipped',
    async (t) => {
      const dockerd = await startDockerd(t, { diskMiB: 300 })
      makeRunnableImage(dockerd, 'race/one:1', SIZE)
      makeRunnableImage(dockerd, 'race/two:1', SIZE)
      dockerd.docker(['tag', 'race/two:1', 'race/other-repo:1']) // two repositories: cannot go by id alone
      makeImage(dockerd, { ref: 'race/free:1', sizeBytes: SIZE })
      makeImage(dockerd, { ref: 'race/multi:1', sizeBytes: SIZE })
      dockerd.docker(['tag', 'race/multi:1', 'race/multi-too:1'])
      const { prune, audit, events } = setup(dockerd, { keepPerRepository: 0, protect: [], buildCache: true })
      const before = tags(dockerd)
      const report = await prune(
        { targetPercent: 0 },
        {
          beforeExecute: (plan) => {
            const planned = plan.plan.flatMap((p) => p.refs)
            t.ok(planned.includes('race/one:1') && planned.includes('race/two:1'), 'both were planned')
            createContainer(dockerd, 'race/one:1')
            createContainer(dockerd, 'race/two:1')
          },
        },
      )
      t.same(
        report.skipped.map((s) => s.refs.join(' ')).sort(),
        ['race/one:1', 'race/other-repo:1 race/two:1'],
        'both skipped',
      )
      t.ok(
        report.skipped.every((s) => /in use by a container/.test(s.reason)),
        'because a container uses them',
      )
      t.same(
        report.removed.map((p) => p.refs.join(' ')).sort(),
        ['race/free:1', 'race/multi-too:1 race/multi:1'],
        'the rest went on, an image of two repositories too',
      )
      t.same(
        tags(dockerd),
        before.filter((r) => !r.startsWith('race/free') && !r.startsWith('race/multi')),
        'the raced images survive with every tag',
      )
      t.same(audit.filter((a) => a.outcome === 'skipped').length, 2, 'skips are audited')
      t.match(report.buildCache, { prunedBytes: Number }, 'the build cache was pruned too, as the policy asks')
      t.same(
        events
          .filter((e) => e.type === 'prune.image')
          .map((e) => e.data.outcome)
          .sort(),
        ['removed', 'removed', 'skipped', 'skipped'],
      )
    },
  )

  t.test(
    'a container that appears while an image of two repositories loses its tags: the tags are put back',
    async (t) => {
      const dockerd = await startDockerd(t, { diskMiB: 300 })
      makeRunnableImage(dockerd, 'late/one:1', SIZE)
      dockerd.docker(['tag', 'late/one:1', 'late/two:1'])
      const { prune } = setup(dockerd, { keepPerRepository: 0, protect: [] })
      const report = await prune(
        { targetPercent: 0 },
        {
          beforeLastReference: (item) => {
            createContainer(
              dockerd,
              item.refs.find((r) => dockerd.docker(['images', '-q', r]).trim() !== '')!,
            )
          },
        },
      )
      t.equal(report.skipped.length, 1, 'skipped')
      t.match(report.skipped[0].reason, /in use by a container/)
      t.same(report.failed, [])
      t.same(tags(dockerd), ['late/one:1', 'late/two:1'], 'both tags are there again')
    },
  )
}

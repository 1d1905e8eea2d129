// Named prune schedules and the deep run's pure parts: the rules a run follows, the dangling volumes
// it removes, and what holds the space when a prune could not free enough.
import t from 'tap'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { rulesFor } from '../../src/prune/schedules.js'
import { planVolumeRemovals, type VolumeFacts } from '../../src/prune/volumes-plan.js'
import { spaceHeldBy } from '../../src/prune/held-by.js'
import { KEPT } from '../../src/prune/plan-types.js'
import { isAnonymousVolume } from '../../src/runtime/docker-disk.js'
import { CronPrune } from '../../src/prune/triggers.js'
import type { PruneRequest } from '../../src/prune/executor-deps.js'
import type { RuntimeDiskUsage } from '../../src/runtime/runtime.js'
import pino from 'pino'

const seedPrune = {
  maxUnusedSeconds: null,
  schedules: [
    { name: 'nightly', cron: '0 3 * * *' },
    { name: 'sunday-deep', cron: '0 4 * * 0', deep: true, maxUnusedSeconds: 30 * 86400, include: ['*pytorch*'] },
  ],
  volumes: { dangling: true },
}

t.test('a named schedule takes its own keys; others keep prune’s', async (t) => {
  const prune = parseConfig(agentConfigSchema, { prune: seedPrune }).prune
  const own = rulesFor(prune)
  t.equal(own.policy, prune)
  t.same([own.deep, own.schedule], [false, null])
  const nightly = rulesFor(prune, 'nightly')
  t.same([nightly.deep, nightly.policy.maxUnusedSeconds, nightly.policy.include], [false, null, []])
  const deep = rulesFor(prune, 'sunday-deep')
  t.same([deep.deep, deep.schedule], [true, 'sunday-deep'])
  t.equal(deep.policy.maxUnusedSeconds, 30 * 86400)
  t.same(deep.policy.include, ['*pytorch*'])
  t.equal(deep.policy.lowPercent, prune.lowPercent, 'keys the schedule leaves out are prune’s')
  t.equal(prune.maxUnusedSeconds, null, 'the configured policy itself is untouched')
  t.throws(
    () => rulesFor(prune, 'weekly'),
    /no prune schedule named "weekly" \(prune.schedules: nightly, sunday-deep\)/,
  )
})

t.test('schedules are validated: names, cron, unknown keys, duplicates', async (t) => {
  const bad = (schedules: unknown[]) => () => parseConfig(agentConfigSchema, { prune: { schedules } })
  t.throws(bad([{ name: 'Deep Clean', cron: '0 4 * * 0' }]), /prune\.schedules\.0\.name/)
  t.throws(bad([{ name: 'deep', cron: 'sundays' }]), /prune\.schedules\.0\.cron: must be a cron expression/)
  t.throws(bad([{ name: 'deep', cron: '0 4 * * 0', lowPercent: 10 }]), /prune\.schedules\.0/)
  t.throws(
    bad([
      { name: 'a', cron: '0 4 * * 0' },
      { name: 'a', cron: '0 5 * * 0' },
    ]),
    /schedule names must be unique/,
  )
  const ok = parseConfig(agentConfigSchema, { prune: seedPrune }).prune
  t.same(ok.volumes, { dangling: true, named: false, protectLabels: ['gpuhost.keep'] })
  t.same(parseConfig(agentConfigSchema, {}).prune.schedules, [])
})

t.test('a named schedule fires with its name', async (t) => {
  const requests: PruneRequest[] = []
  const cron = new CronPrune({
    schedule: '0 4 * * 0',
    name: 'sunday-deep',
    prune: async (r) => {
      requests.push(r)
      return { report: { result: 'ok', after: null } }
    },
    log: pino({ enabled: false }),
  })
  t.equal(cron.name, 'prune-schedule:sunday-deep')
  await cron.start()
  await cron.fire()
  await cron.stop()
  t.same(requests, [{ trigger: 'schedule', dryRun: false, schedule: 'sunday-deep' }])
})

const volume = (name: string, more: Partial<VolumeFacts> = {}): VolumeFacts => ({
  name,
  sizeBytes: 100,
  refCount: 0,
  labels: {},
  anonymous: isAnonymousVolume(name, more.labels ?? {}),
  ...more,
})
const ANON = 'f'.repeat(64)

t.test('dangling volumes: anonymous ones only, never in use, never protected; off by default', async (t) => {
  const volumes = [
    volume(ANON),
    volume('e'.repeat(64), { refCount: 1 }),
    volume('pgdata'),
    volume('d'.repeat(64), { labels: { 'gpuhost.keep': '' } }),
    volume('labelled-anon', { labels: { 'com.docker.volume.anonymous': '' } }),
  ]
  const policy = (v: Record<string, unknown>) => parseConfig(agentConfigSchema, { prune: { volumes: v } }).prune.volumes
  t.same(planVolumeRemovals({ volumes, policy: policy({}) }), { remove: [], kept: [] })
  const plan = planVolumeRemovals({ volumes, policy: policy({ dangling: true }) })
  t.same(
    plan.remove.map((v) => v.name),
    [ANON, 'labelled-anon'],
  )
  t.same(plan.kept, [
    { name: 'd'.repeat(64), reason: 'protected by label gpuhost.keep' },
    { name: 'pgdata', reason: 'a named volume (prune.volumes.named is off)' },
  ])
  const named = planVolumeRemovals({ volumes, policy: policy({ dangling: true, named: true }) })
  t.same(
    named.remove.map((v) => v.name),
    [ANON, 'labelled-anon', 'pgdata'],
  )
  t.notOk(
    named.remove.some((v) => v.name === 'e'.repeat(64)),
    'a volume a container refers to is never planned',
  )
})

t.test('what holds the space: image bytes by why they stayed, then every other kind, largest first', async (t) => {
  const usage: RuntimeDiskUsage = {
    imagesBytes: 1000,
    images: [
      { id: 'sha256:used', sizeBytes: 600, sharedSizeBytes: 100, containers: 1 },
      { id: 'sha256:wanted', sizeBytes: 300, sharedSizeBytes: 100, containers: 0 },
      { id: 'sha256:young', sizeBytes: 200, sharedSizeBytes: 0, containers: 0 },
    ],
    containers: [
      {
        id: 'c1',
        name: 'train',
        state: 'running',
        sizeRwBytes: 50,
        logBytes: 700,
        imageId: 'sha256:used',
        labels: {},
        finishedAt: null,
      },
    ],
    buildCacheBytes: 0,
    volumes: [volume(ANON, { sizeBytes: 40 })],
  }
  const held = spaceHeldBy(usage, [
    { id: 'sha256:used', refs: ['a:1'], reason: KEPT.inUse },
    { id: 'sha256:wanted', refs: ['b:1'], reason: KEPT.wanted },
    { id: 'sha256:young', refs: ['c:1'], reason: 'younger than minAgeSeconds (first seen …)' },
  ])
  const refused = spaceHeldBy(usage, [], [{ id: 'sha256:young' }])
  t.match(refused, [{ kind: 'images_kept', bytes: 700 }, { kind: 'logs' }, { kind: 'images_not_removed', bytes: 200 }])
  t.same(held, [
    { kind: 'logs', bytes: 700 },
    { kind: 'images_in_use', bytes: 500 },
    { kind: 'images_kept', bytes: 200 },
    { kind: 'images_wanted', bytes: 200 },
    { kind: 'images_shared', bytes: 100 },
    { kind: 'containers_running', bytes: 50 },
    { kind: 'volumes_dangling', bytes: 40 },
  ])
})

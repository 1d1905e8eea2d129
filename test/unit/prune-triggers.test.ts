// The prune's ways in, without Docker: the webhook payload and its repeats, the request body,
// the disk watcher on a fake clock, and a dry run reporting exactly the plan.
import t from 'tap'
import { mock } from 'node:test'
import { pino } from 'pino'
import type { ContainerRuntime } from '../../src/runtime/runtime.js'
import { AlertDeduper, parseAlertmanagerPayload } from '../../src/prune/alertmanager.js'
import { parsePruneArgs } from '../../src/prune/request.js'
import { DiskWatcher, CronPrune, RETRY_AFTER_CHECKS, RETRY_MAX_CHECKS } from '../../src/prune/triggers.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import type { DiskFacts } from '../../src/core/snapshot.js'
import { runPrune } from '../../src/prune/executor.js'
import { planPrune } from '../../src/prune/plan.js'
import type { PruneRequest } from '../../src/prune/executor-deps.js'
import { generateCase, NOW } from '../support/generated-images.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'

const silent = pino({ level: 'silent' })
const ok = { report: { result: 'ok' as const, after: null } }

/** what Alertmanager 0.25 posts (webhook payload version 4) */
function payload(
  over: {
    status?: 'firing' | 'resolved'
    labels?: Record<string, string>
    fingerprint?: string
    groupKey?: string
  } = {},
) {
  return {
    receiver: 'gpuhost',
    status: over.status ?? 'firing',
    alerts: [
      {
        status: over.status ?? 'firing',
        labels: { alertname: 'DockerDiskFull', severity: 'warning', ...over.labels },
        annotations: { summary: 'Docker disk above 85 %' },
        startsAt: '2026-11-01T11:58:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=…',
        fingerprint: over.fingerprint ?? 'a1b2c3d4e5f60718',
      },
    ],
    groupLabels: { alertname: 'DockerDiskFull' },
    commonLabels: { alertname: 'DockerDiskFull' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: over.groupKey ?? '{}:{alertname="DockerDiskFull"}',
    truncatedAlerts: 0,
  }
}

t.test('Alertmanager payloads: valid ones parse, bad ones say why', async (t) => {
  t.ok(parseAlertmanagerPayload(payload()).ok)
  const extra = { ...payload(), someFutureField: 1 }
  t.ok(parseAlertmanagerPayload(extra).ok, 'fields of later versions are let through')
  for (const [bad, why] of [
    [undefined, /empty body/],
    [{ ...payload(), version: '3' }, /version/],
    [{ ...payload(), alerts: 'x' }, /alerts/],
    [{ ...payload(), alerts: [{ status: 'burning', labels: {} }] }, /alerts\.0\.status/],
    [[1, 2], /expected object/],
  ] as const) {
    const r = parseAlertmanagerPayload(bad)
    t.notOk(r.ok)
    if (!r.ok) t.match(r.reason, why)
  }
})

t.test('firing alerts for this host prune once per window; resolved, other hosts and repeats do not', async (t) => {
  let now = NOW.getTime()
  const d = new AlertDeduper(600_000, () => new Date(now))
  const decide = (p: ReturnType<typeof payload>) =>
    d
      .decide(parseAlertmanagerPayload(p).ok ? (parseAlertmanagerPayload(p) as any).payload : null, 'gpu-7')
      .map((a) => a.decision)
  t.same(decide(payload()), ['prune'])
  t.same(decide(payload()), ['duplicate'], 'the same alert again')
  t.same(decide(payload({ groupKey: 'other-group' })), ['prune'], 'another group')
  t.same(decide(payload({ fingerprint: 'ffff' })), ['prune'], 'another alert')
  t.same(decide(payload({ status: 'resolved', fingerprint: 'eeee' })), ['resolved'])
  t.same(decide(payload({ labels: { host: 'gpu-8' }, fingerprint: 'dddd' })), ['other host'])
  t.same(decide(payload({ labels: { hostId: 'gpu-8' }, fingerprint: 'cccc' })), ['other host'])
  t.same(decide(payload({ labels: { hostId: 'gpu-7' }, fingerprint: 'bbbb' })), ['prune'], 'a label naming this host')
  now += 600_000
  t.same(decide(payload()), ['prune'], 'after the window the alert counts again')
})

t.test('POST /v1/prune bodies', async (t) => {
  t.same(parsePruneArgs(undefined), { ok: true, args: {} })
  t.same(parsePruneArgs({ dryRun: true, targetPercent: 60 }), { ok: true, args: { dryRun: true, targetPercent: 60 } })
  for (const [bad, why] of [
    [{ dryRun: 'yes' }, /dryRun:/],
    [{ targetPercent: 101 }, /targetPercent:/],
    [{ targetPercent: 0 }, /targetPercent:/],
    [{ targetPercent: 100 }, /targetPercent:/],
    [{ force: true }, /force: unknown key/],
    ['x', /expected object/],
  ] as const) {
    const r = parsePruneArgs(bad)
    t.notOk(r.ok)
    if (!r.ok) t.match(r.reason, why)
  }
})

t.test('disk watcher: prunes at or above high, says so once per crossing, 100 is off', async (t) => {
  mock.timers.enable({ apis: ['setInterval'] })
  t.teardown(() => mock.timers.reset())
  const bus = new EventBus(() => NOW)
  const events: AgentEvent[] = []
  bus.subscribe((e) => events.push(e))
  const requests: PruneRequest[] = []
  let disk: DiskFacts = { path: '/d', mountpoint: '/d', sizeBytes: 100, usedBytes: 50, availBytes: 50, usedPercent: 50 }
  const watcher = new DiskWatcher({
    disk: () => disk,
    highPercent: 85,
    intervalSeconds: 60,
    prune: async (r) => {
      requests.push(r)
      return ok
    },
    bus,
    log: silent,
  })
  await watcher.start()
  mock.timers.tick(60_000)
  t.equal(requests.length, 0, 'below high: nothing')
  disk = { ...disk, usedPercent: 85 }
  mock.timers.tick(60_000)
  t.same(requests, [{ trigger: 'watcher', dryRun: false }], 'at high: a prune')
  mock.timers.tick(60_000)
  t.equal(requests.length, 2, 'still above: tries again')
  disk = { ...disk, usedPercent: 70 }
  mock.timers.tick(60_000)
  t.equal(requests.length, 2)
  t.same(
    events.filter((e) => e.type === 'disk.threshold').map((e) => e.data.state),
    ['above', 'below'],
    'one event per crossing',
  )
  await watcher.stop()
  disk = { ...disk, usedPercent: 99 }
  mock.timers.tick(600_000)
  t.equal(requests.length, 2, 'no checks after stop')

  const off = new DiskWatcher({
    disk: () => disk,
    highPercent: 100,
    intervalSeconds: 60,
    prune: async (r) => {
      requests.push(r)
      return ok
    },
    bus,
    log: silent,
  })
  await off.start()
  mock.timers.tick(600_000)
  t.equal(off.check(), false)
  t.equal(requests.length, 2, 'highPercent 100: never')
  await off.stop()
})

t.test('after a prune that could not free enough, the watcher waits for growth or a while', async (t) => {
  const bus = new EventBus(() => NOW)
  let disk: DiskFacts = { path: '/d', mountpoint: '/d', sizeBytes: 100, usedBytes: 90, availBytes: 10, usedPercent: 90 }
  let runs = 0
  const watcher = new DiskWatcher({
    disk: () => disk,
    highPercent: 85,
    intervalSeconds: 60,
    bus,
    log: silent,
    prune: async () => {
      runs++
      return { report: { result: 'not_enough' as const, after: { ...disk } } }
    },
  })
  const settle = () => new Promise((r) => setImmediate(r))
  t.ok(watcher.check())
  await settle()
  t.notOk(watcher.check(), 'no second prune at the same usage')
  disk = { ...disk, usedPercent: 90.5 }
  t.notOk(watcher.check(), 'nor after a little growth')
  disk = { ...disk, usedPercent: 91 }
  t.ok(watcher.check(), 'one more point: try again')
  await settle()
  for (let i = 1; i < 2 * RETRY_AFTER_CHECKS; i++) t.notOk(watcher.check())
  t.ok(watcher.check(), `the second short run in a row: again after ${2 * RETRY_AFTER_CHECKS} checks`)
  await settle()
  for (let i = 1; i < 4 * RETRY_AFTER_CHECKS; i++) t.notOk(watcher.check())
  t.ok(watcher.check(), 'twice as long after the third')
  t.equal(runs, 4)
  for (let n = 0; n < 6; n++) {
    await settle()
    let waited = 1
    while (!watcher.check()) waited++
    t.ok(waited <= RETRY_MAX_CHECKS, `never more than ${RETRY_MAX_CHECKS} checks (${waited})`)
  }
  t.equal(runs, 10, 'it keeps trying')
})

t.test('a prune that frees enough ends the backoff', async (t) => {
  const bus = new EventBus(() => NOW)
  const disk: DiskFacts = {
    path: '/d',
    mountpoint: '/d',
    sizeBytes: 100,
    usedBytes: 90,
    availBytes: 10,
    usedPercent: 90,
  }
  let result: 'ok' | 'not_enough' = 'not_enough'
  const watcher = new DiskWatcher({
    disk: () => disk,
    highPercent: 85,
    intervalSeconds: 60,
    bus,
    log: silent,
    prune: async () => ({ report: { result, after: { ...disk } } }),
  })
  const settle = () => new Promise((r) => setImmediate(r))
  t.ok(watcher.check())
  await settle()
  for (let i = 1; i < RETRY_AFTER_CHECKS; i++) t.notOk(watcher.check())
  result = 'ok'
  t.ok(watcher.check())
  await settle()
  t.ok(watcher.check(), 'usage still above the mark after an ok run: the next check prunes')
})

t.test('the schedule fires the same job; null is none; a bad expression is a config error', async (t) => {
  const requests: PruneRequest[] = []
  const cron = new CronPrune({
    schedule: '0 3 * * 0',
    prune: async (r) => {
      requests.push(r)
      return ok
    },
    log: silent,
  })
  await cron.start()
  await cron.fire()
  await cron.stop()
  t.same(requests, [{ trigger: 'schedule', dryRun: false }])
  const none = new CronPrune({ schedule: null, prune: async () => ok, log: silent })
  await none.start()
  await none.stop()
  t.throws(
    () => parseConfig(agentConfigSchema, { prune: { schedule: 'every sunday' } }),
    /prune\.schedule: must be a cron expression/,
  )
})

t.test('a dry run reports exactly the plan and never touches the runtime', async (t) => {
  const untouchable = new Proxy(
    {},
    {
      get: (_, key) => {
        throw new Error(`dry run used the runtime (${String(key)})`)
      },
    },
  ) as ContainerRuntime
  const config = parseConfig(agentConfigSchema, {})
  for (let i = 0; i < 300; i++) {
    const input = generateCase(0xd7 + i)
    const bus = new EventBus(() => NOW)
    const types: string[] = []
    bus.subscribe((e) => types.push(e.type))
    const disk = { path: '/d', sizeBytes: input.disk.usedBytes + input.disk.availBytes, ...input.disk, usedPercent: 0 }
    const report = await runPrune(
      {
        runtime: untouchable,
        measure: async () => disk,
        bus,
        log: silent,
        now: () => NOW,
        policy: { ...config.prune, ...input.policy },
        pullsInFlight: () => input.pullsInFlight ?? [],
      },
      { images: input.images, diskPath: '/d' },
      { trigger: 'cli', dryRun: true, targetPercent: input.targetPercent },
    )
    const plan = planPrune(input)
    if (
      JSON.stringify(report.plan) !== JSON.stringify(plan.plan) ||
      report.removed.length ||
      report.skipped.length ||
      report.needBytes !== plan.needBytes
    ) {
      t.fail(`case ${i}: dry run differs from the plan`)
    }
    if (types.join() !== 'prune.started,prune.finished') t.fail(`case ${i}: events ${types}`)
  }
  t.pass('dry run = plan in 300 cases')
})

// The disk breakdown by kind from the runtime's accounting: shared layers once, stopped containers
// apart from running ones, dangling volumes apart, logs largest first.
import t from 'tap'
import { breakdownOf } from '../../src/inventory/disk-breakdown.js'
import { toDiskUsage } from '../../src/runtime/docker-disk.js'

t.test('kinds from a /system/df answer and log sizes', async (t) => {
  const usage = toDiskUsage(
    {
      LayersSize: 1000,
      Images: [
        { Id: 'a', Size: 600, SharedSize: 400, Containers: 1 },
        { Id: 'b', Size: 500, SharedSize: 400, Containers: 0 },
        { Id: 'c', Size: 100, SharedSize: -1, Containers: -1 },
      ],
      Containers: [
        { Id: 'r1', Names: ['/train'], State: 'running', SizeRw: 10 },
        { Id: 'e1', Names: ['/old'], State: 'exited', SizeRw: 20 },
        { Id: 'c1', Names: ['/made'], State: 'created', SizeRw: 5 },
      ],
      Volumes: [
        { Name: 'used', UsageData: { Size: 70, RefCount: 1 } },
        { Name: 'left', UsageData: { Size: 30, RefCount: 0 } },
        { Name: 'remote', UsageData: { Size: -1, RefCount: 0 } },
      ],
      BuildCache: [
        { Size: 40, Shared: false },
        { Size: 99, Shared: true },
      ],
    },
    new Map([
      ['r1', { logBytes: 300, finishedAt: null }],
      ['e1', { logBytes: 900, finishedAt: 1700000000 }],
      ['c1', { logBytes: null, finishedAt: null }],
    ]),
  )
  const b = breakdownOf(usage, { takenAt: '2026-01-01T00:00:00.000Z', durationSeconds: 2, topLogs: 1 })
  t.same(b.bytes, {
    images_unique: 200 + 100 + 100,
    images_shared: 600,
    containers_running: 10,
    containers_stopped: 25,
    logs: 1200,
    build_cache: 40,
    volumes_in_use: 70,
    volumes_dangling: 30,
  })
  t.equal(b.imagesBytes, 1000)
  t.same(b.topLogs, [{ id: 'e1', name: 'old', state: 'exited', logBytes: 900 }], 'the largest log, top 1')
  t.same(b.largeLogs, [], 'no warning threshold: none large')
  const warned = breakdownOf(usage, { takenAt: 'x', durationSeconds: 0, topLogs: 0, logWarnBytes: 299 })
  t.same(
    warned.largeLogs.map((l) => l.name),
    ['old', 'train'],
    'every log over disk.logWarnBytes, largest first',
  )
})

t.test('an empty runtime is all zeros', async (t) => {
  const b = breakdownOf(toDiskUsage({}, new Map()), { takenAt: 'x', durationSeconds: 0, topLogs: 10 })
  t.ok(Object.values(b.bytes).every((v) => v === 0))
  t.same(b.topLogs, [])
})

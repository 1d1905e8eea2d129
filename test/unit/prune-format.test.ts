// The human prune report: the exited containers rule's decisions and the bytes freed per kind.
import t from 'tap'
import { formatPruneReport } from '../../src/commands/prune-format.js'
import type { PruneReport } from '../../src/prune/report.js'

const MiB = 1024 * 1024
const disk = {
  path: '/var/lib/docker',
  sizeBytes: 100 * MiB,
  usedBytes: 50 * MiB,
  availBytes: 50 * MiB,
  usedPercent: 50,
}
const container = {
  id: 'abcdef0123456789',
  name: 'old-train',
  imageId: 'sha256:1',
  finishedAt: '2026-11-01T00:00:00.000Z',
  sizeRwBytes: 3 * MiB,
  logBytes: 2 * MiB,
  reason: 'exited at 2026-11-01T00:00:00.000Z, older than 604800 s',
}
const report: PruneReport = {
  trigger: 'cli',
  dryRun: true,
  schedule: null,
  deep: false,
  result: 'ok',
  targetPercent: 80,
  before: disk,
  needBytes: 0,
  plan: [],
  removed: [],
  skipped: [],
  failed: [],
  kept: [],
  buildCache: null,
  containers: {
    plan: [container],
    removed: [],
    skipped: [],
    kept: [{ id: '0123456789abcdef', name: 'pinned', reason: 'protected by label gpuhost.keep' }],
  },
  volumes: null,
  freedBytes: 0,
  freedBytesByKind: { containers: 0, images: 0, buildCache: 0, volumes: 0 },
  heldBy: null,
  after: disk,
  enough: true,
  startedAt: '2026-11-30T00:00:00.000Z',
  durationSeconds: 1,
}

t.test('a dry run lists the containers it would remove and keep', async (t) => {
  const text = formatPruneReport(report)
  t.match(text, 'would remove 1 exited containers (5.0 MiB):')
  t.match(text, /abcdef012345 +old-train +3\.0 MiB +2\.0 MiB +exited at/)
  t.match(text, 'container kept 0123456789ab (pinned): protected by label gpuhost.keep')
})

t.test('a real run says what each kind freed', async (t) => {
  const text = formatPruneReport({
    ...report,
    dryRun: false,
    containers: { ...report.containers!, plan: [container], removed: [container] },
    freedBytes: 20 * MiB,
    freedBytesByKind: { containers: 5 * MiB, images: 15 * MiB, buildCache: 0, volumes: 1 * MiB },
  })
  t.match(text, 'removed 1 exited containers (5.0 MiB):')
  t.match(text, 'by kind: containers 5.0 MiB, images 15.0 MiB, build cache 0 B, volumes 1.0 MiB')
})

t.test('no containers section when the rule is off', async (t) => {
  t.notMatch(formatPruneReport({ ...report, containers: null }), 'exited containers')
})

t.test('a deep run of a named schedule lists its volumes; not enough says what holds the space', async (t) => {
  const volume = { name: 'a'.repeat(64), sizeBytes: 4 * MiB, anonymous: true, reason: 'dangling anonymous volume' }
  const text = formatPruneReport({
    ...report,
    schedule: 'sunday-deep',
    deep: true,
    result: 'not_enough',
    needBytes: 10 * MiB,
    enough: false,
    volumes: { plan: [volume], removed: [], skipped: [], kept: [{ name: 'pgdata', reason: 'a named volume' }] },
    heldBy: [
      { kind: 'images_in_use', bytes: 30 * MiB },
      { kind: 'logs', bytes: 2 * MiB },
    ],
  })
  t.match(text, 'rules of schedule sunday-deep (deep)')
  t.match(text, 'would remove 1 dangling volumes (4.0 MiB):')
  t.match(text, 'volume kept pgdata: a named volume')
  t.match(text, 'the space is held by: images_in_use 30.0 MiB, logs 2.0 MiB')
})

// The age rule (maxUnusedSeconds) and the scope (include/exclude, thresholdScope) of the prune
// planner: the age rule takes old unused images in scope whatever the usage, behind every guard;
// the threshold takes everything eligible unless thresholdScope is "include".
import t from 'tap'
import { planPrune } from '../../src/prune/plan.js'
import type { PrunePolicy } from '../../src/prune/plan-types.js'
import type { ImageFacts } from '../../src/core/snapshot.js'

const GiB = 1024 ** 3
const NOW = new Date('2026-11-30T12:00:00Z')
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86400_000).toISOString()

function image(tag: string, o: { lastUsed?: string | null; firstSeen?: string; containers?: number } = {}): ImageFacts {
  return {
    id: `sha256:${Buffer.from(tag).toString('hex').padEnd(64, '0').slice(0, 64)}`,
    repoTags: [tag],
    repoDigests: [],
    sizeBytes: GiB,
    sharedSizeBytes: 0,
    createdAt: daysAgo(100),
    containers: Array.from({ length: o.containers ?? 0 }, (_, n) => ({ id: `c${n}`, name: `c${n}`, state: 'exited' })),
    dangling: false,
    lastUsed: o.lastUsed === undefined ? daysAgo(1) : o.lastUsed,
    firstSeen: o.firstSeen ?? daysAgo(90),
    cudaEnv: null,
  }
}

const base: PrunePolicy = { lowPercent: 80, minAgeSeconds: 3600, protect: [], keepPerRepository: 0 }
const THIRTY_DAYS = 30 * 86400
// 10 % used: far below any threshold.
const calm = { usedBytes: 10 * GiB, availBytes: 90 * GiB }
const full = { usedBytes: 95 * GiB, availBytes: 5 * GiB }

const images = [
  image('nvcr.io/nvidia/pytorch:23.10-py3', { lastUsed: daysAgo(40) }),
  image('pytorch/pytorch:2.1.0', { lastUsed: null, firstSeen: daysAgo(60) }),
  image('pytorch/pytorch:2.4.0', { lastUsed: daysAgo(2) }),
  image('tensorflow/tensorflow:2.14.0', { lastUsed: daysAgo(50) }),
  image('pytorch/pytorch:1.13.0', { lastUsed: daysAgo(45), containers: 1 }),
  image('pytorch/pytorch:2.0.0', { lastUsed: daysAgo(45), firstSeen: new Date(NOW.getTime() - 60_000).toISOString() }),
  image('nvcr.io/nvidia/pytorch:22.12-py3', { lastUsed: daysAgo(70) }),
]

t.test('off by default: below the threshold nothing is planned', async (t) => {
  const plan = planPrune({ disk: calm, images, policy: base, now: NOW })
  t.same(plan.plan, [])
})

t.test('the age rule takes old unused images whatever the usage, every guard kept', async (t) => {
  const plan = planPrune({ disk: calm, images, policy: { ...base, maxUnusedSeconds: THIRTY_DAYS }, now: NOW })
  t.equal(plan.needBytes, 0)
  t.same(plan.plan.map((p) => p.refs[0]).sort(), [
    'nvcr.io/nvidia/pytorch:22.12-py3',
    'nvcr.io/nvidia/pytorch:23.10-py3',
    'pytorch/pytorch:2.1.0',
    'tensorflow/tensorflow:2.14.0',
  ])
  t.ok(plan.plan.every((p) => p.rule === 'max_unused'))
  t.match(plan.plan.find((p) => p.refs[0] === 'pytorch/pytorch:2.1.0')?.reason, 'never used, first seen')
  const kept = Object.fromEntries(plan.kept.map((k) => [k.refs[0], k.reason]))
  t.match(kept['pytorch/pytorch:1.13.0'], 'in use', 'in use stays however old')
  t.match(kept['pytorch/pytorch:2.0.0'], 'younger than minAgeSeconds', 'young stays')
  t.match(kept['pytorch/pytorch:2.4.0'], 'not needed', 'recently used stays')
})

t.test('include limits the age rule to *pytorch* references; exclude takes some out', async (t) => {
  const policy = { ...base, maxUnusedSeconds: THIRTY_DAYS, include: ['*pytorch*'], exclude: ['nvcr.io/*:22.*'] }
  const plan = planPrune({ disk: calm, images, policy, now: NOW })
  t.same(plan.plan.map((p) => p.refs[0]).sort(), ['nvcr.io/nvidia/pytorch:23.10-py3', 'pytorch/pytorch:2.1.0'])
})

t.test('the threshold still takes every eligible image, unless thresholdScope is include', async (t) => {
  const policy = { ...base, maxUnusedSeconds: THIRTY_DAYS, include: ['*pytorch*'] }
  const all = planPrune({ disk: full, images, policy, now: NOW, targetPercent: 50 })
  t.ok(
    all.plan.some((p) => p.refs[0] === 'tensorflow/tensorflow:2.14.0' && p.rule === 'threshold'),
    'threshold takes what the age rule may not',
  )
  t.same(
    all.plan.slice(0, 3).map((p) => p.rule),
    ['max_unused', 'max_unused', 'max_unused'],
    'the age rule first',
  )
  const scoped = planPrune({ disk: full, images, policy: { ...policy, thresholdScope: 'include' }, now: NOW })
  t.notOk(scoped.plan.some((p) => p.refs[0].startsWith('tensorflow')))
  t.match(scoped.kept.find((k) => k.refs[0].startsWith('tensorflow'))?.reason, 'outside prune.include/prune.exclude')
  t.ok(scoped.plan.some((p) => p.refs[0] === 'pytorch/pytorch:2.4.0' && p.rule === 'threshold'))
})

t.test('what the age rule takes counts toward the target', async (t) => {
  // 3 GiB over the target; the age rule plans 4 × 1 GiB: the threshold needs nothing more.
  const disk = { usedBytes: 83 * GiB, availBytes: 17 * GiB }
  const plan = planPrune({ disk, images, policy: { ...base, maxUnusedSeconds: THIRTY_DAYS }, now: NOW })
  t.equal(plan.plan.length, 4)
  t.ok(plan.expectedEnough)
})

t.test('maxImageBytes: least recently used eligible images go until the unique bytes fit', async (t) => {
  // 7 images of 1 GiB unique each; a 4.5 GiB budget: 3 must go, far below the threshold.
  const plan = planPrune({ disk: calm, images, policy: { ...base, maxImageBytes: 4.5 * GiB }, now: NOW })
  t.same(
    plan.plan.map((p) => [p.refs[0], p.rule]),
    [
      ['pytorch/pytorch:2.1.0', 'max_image_bytes'],
      ['nvcr.io/nvidia/pytorch:22.12-py3', 'max_image_bytes'],
      ['tensorflow/tensorflow:2.14.0', 'max_image_bytes'],
    ],
    'never used first, then least recently used; in use and young images count but stay',
  )
  t.match(plan.plan[0].reason, 'over maxImageBytes')
  const within = planPrune({ disk: calm, images, policy: { ...base, maxImageBytes: 7 * GiB }, now: NOW })
  t.same(within.plan, [], 'within the budget: nothing')
  const withAge = planPrune({
    disk: calm,
    images,
    policy: { ...base, maxImageBytes: 4.5 * GiB, maxUnusedSeconds: THIRTY_DAYS, include: ['nvcr.io/*'] },
    now: NOW,
  })
  t.same(
    withAge.plan.map((p) => p.rule),
    ['max_unused', 'max_unused', 'max_image_bytes'],
    'what the age rule takes counts toward the budget',
  )
})

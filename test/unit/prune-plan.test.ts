// Properties of the prune planner over thousands of generated cases (seeded: a failure names its
// seed, and `seedFor(i)` replays it), plus examples for the rules that need a closer look.
import t, { type Test } from 'tap'
import { planPrune, bytesToFree, expectedFreedBytes } from '../../src/prune/plan.js'
import { KEPT, type PlanInput, type PrunePlan } from '../../src/prune/plan-types.js'
import type { ImageFacts } from '../../src/core/snapshot.js'
import { repositoryOf } from '../../src/registry/image-names.js'
import { generateCase, NOW } from '../support/generated-images.js'
import { imageFactsAt } from '../support/image-facts.js'

const CASES = 3000
const seedFor = (i: number) => 0x5eed0000 + i

const time = (iso: string | null, fallback: number) => {
  const v = iso === null ? NaN : Date.parse(iso)
  return Number.isNaN(v) ? fallback : v
}
const refsOf = (i: ImageFacts) => (i.repoTags.length ? i.repoTags : i.repoDigests)
const dangling = (i: ImageFacts) => i.repoTags.length === 0 && i.repoDigests.length === 0

/** the guards, written again from the policy's words rather than from the planner's code */
function mustKeep(image: ImageFacts, input: PlanInput): string | null {
  const { policy } = input
  if (image.containers.length > 0) return 'in use'
  const pulls = new Set(input.pullsInFlight ?? [])
  if ([...image.repoTags, ...image.repoDigests].some((r) => pulls.has(r))) return 'pull'
  for (const glob of policy.protect) {
    if (glob === 'keep/*' && image.repoTags.concat(image.repoDigests).some((r) => r.startsWith('keep/')))
      return 'protect'
    if (glob === '*:stable' && image.repoTags.some((r) => r.endsWith(':stable'))) return 'protect'
    if (
      glob === 'ubuntu' &&
      image.repoTags.concat(image.repoDigests).some((r) => r.startsWith('ubuntu:') || r.startsWith('ubuntu@'))
    )
      return 'protect'
    if (glob.startsWith('sha256:') && image.id.startsWith(glob)) return 'protect'
  }
  const seen = time(image.firstSeen, NaN)
  if (Number.isNaN(seen) || input.now.getTime() - seen < policy.minAgeSeconds * 1000) return 'young'
  if (policy.keepPerRepository > 0) {
    for (const repo of new Set(refsOf(image).map(repositoryOf))) {
      const same = input.images.filter((i) => refsOf(i).some((r) => repositoryOf(r) === repo))
      same.sort(
        (a, b) =>
          time(b.createdAt, 0) - time(a.createdAt, 0) ||
          time(b.firstSeen, 0) - time(a.firstSeen, 0) ||
          (a.id < b.id ? -1 : 1),
      )
      if (same.slice(0, policy.keepPerRepository).includes(image)) return 'newest'
    }
  }
  return null
}

/** a ≤ b in eviction order */
function inOrder(a: ImageFacts, b: ImageFacts): boolean {
  if (dangling(a) !== dangling(b)) return dangling(a)
  const ua = time(a.lastUsed, -Infinity)
  const ub = time(b.lastUsed, -Infinity)
  if (ua !== ub) return ua < ub
  return time(a.firstSeen, Infinity) <= time(b.firstSeen, Infinity)
}

function checkCase(t: Test, seed: number): void {
  const input = generateCase(seed)
  const out = planPrune(input)
  const byId = new Map(input.images.map((i) => [i.id, i]))
  const fail = (what: string) => t.fail(`seed ${seed}: ${what}`)
  const target = input.targetPercent ?? input.policy.lowPercent

  // every image is either planned or kept, once
  const ids = [...out.plan.map((p) => p.id), ...out.kept.map((k) => k.id)]
  if (ids.length !== input.images.length || new Set(ids).size !== ids.length)
    fail('plan and kept are not a partition of the images')

  for (const item of out.plan) {
    const image = byId.get(item.id)!
    const guard = mustKeep(image, input)
    if (guard) fail(`planned ${item.id.slice(7, 19)} (${image.repoTags}) although ${guard}`)
    if (
      item.expectedFreedBytes !== expectedFreedBytes(image) ||
      item.expectedFreedBytes > image.sizeBytes ||
      item.expectedFreedBytes < 0
    )
      fail('expected freed bytes')
  }
  for (let i = 1; i < out.plan.length; i++) {
    if (!inOrder(byId.get(out.plan[i - 1].id)!, byId.get(out.plan[i].id)!)) fail(`plan out of order at ${i}`)
  }
  if (out.needBytes !== bytesToFree(input.disk, target)) fail('needBytes')
  if (out.targetPercent !== target) fail('targetPercent')
  const sum = out.plan.reduce((s, p) => s + p.expectedFreedBytes, 0)
  if (sum !== out.expectedFreedBytes) fail('expectedFreedBytes is not the sum of the plan')
  if (out.expectedEnough !== sum >= out.needBytes) fail('expectedEnough')
  // stops at the target: without its last item the plan would not be enough
  if (out.plan.length > 0 && sum - out.plan[out.plan.length - 1].expectedFreedBytes >= out.needBytes)
    fail('plan goes on past the target')
  if (out.needBytes === 0 && out.plan.length > 0) fail('plans although nothing is needed')
  // what was left out for "not needed" is eligible and comes after the plan
  const notNeeded = out.kept.filter((k) => k.reason === KEPT.notNeeded)
  if (!out.expectedEnough && notNeeded.length > 0) fail('left eligible images out although the plan is not enough')
  const last = out.plan.length ? byId.get(out.plan[out.plan.length - 1].id)! : null
  for (const k of notNeeded) {
    const image = byId.get(k.id)!
    if (mustKeep(image, input)) fail('a guarded image is reported as not needed')
    if (last && !inOrder(last, image)) fail('a not-needed image comes before the end of the plan')
  }
  // every guarded image is kept with a reason
  for (const k of out.kept) if (!k.reason) fail('kept without a reason')
}

t.test(`${CASES} generated cases: guards, order, target`, async (t) => {
  let planned = 0
  let withNeed = 0
  const reasons = new Map<string, number>()
  for (let i = 0; i < CASES; i++) {
    checkCase(t, seedFor(i))
    const out = planPrune(generateCase(seedFor(i)))
    planned += out.plan.length
    if (out.needBytes > 0) withNeed++
    for (const k of out.kept) {
      const kind = k.reason.replace(/ \(.*| by ".*| of .*/, '')
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1)
    }
  }
  // the properties are only worth something if the cases hit every guard often
  for (const kind of [
    'in use by a container',
    'a pull in flight is writing it',
    'protected',
    'younger than minAgeSeconds',
    'first-seen time unknown: kept as young',
    'among the newest 1',
    'among the newest 2',
    KEPT.notNeeded,
  ]) {
    t.ok((reasons.get(kind) ?? 0) >= 50, `${kind}: ${reasons.get(kind) ?? 0} images kept for it`)
  }
  t.ok(planned > CASES, `the cases plan something (${planned} images planned over ${CASES} cases)`)
  t.ok(withNeed > CASES / 3 && withNeed < CASES, `a mix of disks over and under target (${withNeed} need space)`)
  t.pass('all properties held')
})

t.test('the plan does not depend on the order the images come in', async (t) => {
  for (let i = 0; i < 500; i++) {
    const input = generateCase(seedFor(i))
    const reversed = planPrune({ ...input, images: [...input.images].reverse() })
    const plain = planPrune(input)
    if (JSON.stringify(reversed.plan) !== JSON.stringify(plain.plan))
      t.fail(`seed ${seedFor(i)}: order changes the plan`)
  }
  t.pass()
})

// ---- examples --------------------------------------------------------------------------------

const MiB = 1024 * 1024
const day = (n: number) => new Date(NOW.getTime() - n * 86400_000).toISOString()
const image = imageFactsAt(NOW)
const disk = (usedMiB: number, totalMiB = 1000) => ({
  usedBytes: usedMiB * MiB,
  availBytes: (totalMiB - usedMiB) * MiB,
})
const policy = { lowPercent: 50, minAgeSeconds: 3600, protect: [] as string[], keepPerRepository: 0 }
const ids = (p: PrunePlan) => p.plan.map((i) => i.id)

t.test('dangling first, then least recently used, never-used as oldest, ties by first seen', async (t) => {
  const images = [
    image({ id: 'used-recently', repoTags: ['a:1'], lastUsed: day(1) }),
    image({ id: 'used-long-ago', repoTags: ['a:2'], lastUsed: day(20) }),
    image({ id: 'never-used-later', repoTags: ['a:3'], firstSeen: day(5) }),
    image({ id: 'never-used-earlier', repoTags: ['a:4'], firstSeen: day(25) }),
    image({ id: 'dangling', dangling: true, lastUsed: day(0.5) }),
  ]
  const out = planPrune({ disk: disk(1000), images, policy, now: NOW })
  t.same(ids(out), ['dangling', 'never-used-earlier', 'never-used-later', 'used-long-ago', 'used-recently'])
  t.equal(out.plan[0].reason, 'dangling')
  t.match(out.plan[1].reason, /least recently used \(never used/)
})

t.test('stops as soon as the target would be reached', async (t) => {
  const images = [1, 2, 3, 4].map((n) => image({ id: `i${n}`, repoTags: [`a:${n}`], lastUsed: day(10 - n) }))
  const out = planPrune({ disk: disk(650), images, policy, now: NOW })
  t.equal(out.needBytes, 150 * MiB)
  t.same(ids(out), ['i1', 'i2'], '100 MiB is not enough, 200 MiB is')
  t.same(
    out.kept.map((k) => [k.id, k.reason]),
    [
      ['i3', KEPT.notNeeded],
      ['i4', KEPT.notNeeded],
    ],
  )
  t.same(
    ids(planPrune({ disk: disk(650), images, policy, now: NOW, targetPercent: 70 })),
    [],
    'already below a 70 % target',
  )
})

t.test('shared layers are not counted as freed; unknown shared size counts nothing', async (t) => {
  const images = [
    image({ id: 'shares-most', repoTags: ['a:1'], sizeBytes: 100 * MiB, sharedSizeBytes: 90 * MiB, lastUsed: day(9) }),
    image({ id: 'unknown', repoTags: ['a:2'], sharedSizeBytes: -1, lastUsed: day(8) }),
    image({ id: 'own', repoTags: ['a:3'], lastUsed: day(7) }),
  ]
  const out = planPrune({ disk: disk(550), images, policy, now: NOW })
  t.same(
    out.plan.map((p) => p.expectedFreedBytes),
    [10 * MiB, 0, 100 * MiB],
  )
  t.same(ids(out), ['shares-most', 'unknown', 'own'], 'goes on until the unshared bytes cover the need')
})

t.test('guards: containers, pulls in flight, protect globs, age, newest per repository', async (t) => {
  const images = [
    image({
      id: 'sha256:' + 'a'.repeat(64),
      repoTags: ['run/x:1'],
      containers: [{ id: 'c1', name: 'c1', state: 'exited' }],
    }),
    image({ id: 'sha256:' + 'b'.repeat(64), repoTags: ['pull/x:1'] }),
    image({ id: 'sha256:' + 'c'.repeat(64), repoTags: ['nvidia/cuda:stable'] }),
    image({ id: 'sha256:' + 'd'.repeat(64), repoTags: ['ubuntu:22.04'] }),
    image({ id: 'sha256:' + 'e'.repeat(64), repoTags: ['plain/x:1'] }),
    image({
      id: 'sha256:' + 'f'.repeat(64),
      repoTags: ['young/x:1'],
      firstSeen: new Date(NOW.getTime() - 60_000).toISOString(),
      createdAt: day(300),
    }),
    image({ id: 'sha256:' + '1'.repeat(64), repoTags: ['repo/m:old'], createdAt: day(50) }),
    image({ id: 'sha256:' + '2'.repeat(64), repoTags: ['repo/m:new'], createdAt: day(10) }),
    image({ id: 'sha256:' + '3'.repeat(64), repoTags: ['free/x:1'] }),
  ]
  const out = planPrune({
    disk: disk(1000),
    images,
    now: NOW,
    pullsInFlight: ['pull/x:1'],
    policy: { ...policy, protect: ['*:stable', 'docker.io/library/ubuntu', 'eeeeeeeeeeee'], keepPerRepository: 1 },
  })
  const reasons = Object.fromEntries(out.kept.map((k) => [k.refs[0], k.reason]))
  t.equal(reasons['run/x:1'], KEPT.inUse)
  t.equal(reasons['pull/x:1'], KEPT.pullInFlight)
  t.equal(reasons['nvidia/cuda:stable'], 'protected by "*:stable"', 'a single * crosses the slash')
  t.equal(reasons['ubuntu:22.04'], 'protected by "docker.io/library/ubuntu"', 'globs may name the full reference')
  t.equal(reasons['plain/x:1'], 'protected by "eeeeeeeeeeee"', 'an id prefix protects')
  t.match(reasons['young/x:1'], /younger than minAgeSeconds/, 'a fresh pull of an old build is young')
  t.equal(reasons['repo/m:new'], 'among the newest 1 of repo/m')
  t.equal(reasons['free/x:1'], 'among the newest 1 of free/x', 'the only image of its repository is its newest')
  t.same(
    out.plan.map((p) => p.refs[0]),
    ['repo/m:old'],
    'only the older image of repo/m may go',
  )
})

t.test('an image pulled by digest only is not dangling junk', async (t) => {
  const pinned = image({
    id: 'pinned',
    dangling: true,
    repoDigests: ['nvcr.io/nvidia/pytorch@sha256:' + '9'.repeat(64)],
    lastUsed: day(1),
  })
  const junk = image({ id: 'junk', dangling: true, lastUsed: day(0.1) })
  const old = image({ id: 'old', repoTags: ['a:1'], lastUsed: day(20) })
  const out = planPrune({ disk: disk(1000), images: [pinned, junk, old], policy, now: NOW })
  t.same(ids(out), ['junk', 'old', 'pinned'])
  t.same(out.plan[2].refs, ['nvcr.io/nvidia/pytorch@sha256:' + '9'.repeat(64)])
})

t.test('an unreadable first-seen time keeps the image', async (t) => {
  const out = planPrune({
    disk: disk(1000),
    images: [image({ id: 'x', repoTags: ['a:1'], firstSeen: 'garbage' })],
    policy: { ...policy, minAgeSeconds: 0 },
    now: NOW,
  })
  t.same(ids(out), [])
  t.match(out.kept[0].reason, /first-seen time unknown/)
})

t.test('needBytes follows df: used / (used + available)', async (t) => {
  t.equal(bytesToFree({ usedBytes: 900, availBytes: 100 }, 80), 100)
  t.equal(bytesToFree({ usedBytes: 700, availBytes: 300 }, 80), 0)
  t.equal(bytesToFree({ usedBytes: 0, availBytes: 0 }, 80), 0)
})

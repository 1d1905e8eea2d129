// The prune planner: snapshot + policy + now → which images to remove, in which order, and why;
// and which images stay, and why. Pure: no Docker, no clock, no filesystem, so thousands of
// generated cases can test it and a dry run can show exactly what a real run would do.
//
// Two rules beside the threshold, both behind every guard (keep-reason.ts), in the eviction order
// (image-order.ts):
//   - the age rule (maxUnusedSeconds): an image unused (last used, or first seen when never used)
//     for longer is planned whatever the disk usage, first;
//   - the budget (maxImageBytes): least recently used eligible images go, next, until the images'
//     unique bytes (each image's size less its shared layers) are within it, whatever the usage;
//   - the scope (include/exclude globs on references): the age rule only takes images in scope;
//     the threshold takes every eligible image unless thresholdScope is "include".
import type { DiskFacts, ImageFacts } from '../core/snapshot.js'
import { usedBytesAtPercent } from '../inventory/used-percent.js'
import { pullSet, wantedSet } from '../registry/image-names.js'
import { compareForEviction, keyed, newestPerRepository, type Keyed } from './image-order.js'
import { keepReason } from './keep-reason.js'
import { KEPT, type KeptItem, type PlanInput, type PlanItem, type PrunePlan } from './plan-types.js'
import { protectMatcher, scopeMatcher } from './protect-match.js'

/** Bytes to free so that usage is at most targetPercent. */
export function bytesToFree(disk: Pick<DiskFacts, 'usedBytes' | 'availBytes'>, targetPercent: number): number {
  return Math.max(0, disk.usedBytes - usedBytesAtPercent(disk, targetPercent))
}

/**
 * What removal frees for sure. Shared layers stay as long as any other image holds them, so only
 * the unshared part counts. When Docker did not report the shared size (-1), nothing is certain:
 * count 0, and the plan goes on to the next image rather than claim space it may not free. The
 * executor measures the disk after every removal and stops once the target is really reached, so
 * this caution does not make a run remove more than it must.
 */
export function expectedFreedBytes(image: Pick<ImageFacts, 'sizeBytes' | 'sharedSizeBytes'>): number {
  if (image.sharedSizeBytes < 0) return 0
  return Math.max(0, image.sizeBytes - image.sharedSizeBytes)
}

function planReason({ image, dangling }: Keyed): string {
  if (dangling) return 'dangling'
  return image.lastUsed
    ? `least recently used (last used ${image.lastUsed})`
    : `least recently used (never used, first seen ${image.firstSeen})`
}

function itemOf(k: Keyed, rule: PlanItem['rule'], reason: string): PlanItem {
  return {
    id: k.image.id,
    refs: k.refs,
    sizeBytes: k.image.sizeBytes,
    expectedFreedBytes: expectedFreedBytes(k.image),
    lastUsed: k.image.lastUsed,
    firstSeen: k.image.firstSeen,
    dangling: k.dangling,
    rule,
    reason,
  }
}

/** The pure planner. */
export function planPrune(input: PlanInput): PrunePlan {
  const targetPercent = input.targetPercent ?? input.policy.lowPercent
  const needBytes = bytesToFree(input.disk, targetPercent)
  const now = input.now.getTime()
  const { kept, candidates } = guard(input, now)
  const selected = select(input, candidates, kept, now, needBytes)
  return {
    targetPercent,
    needBytes,
    plan: selected.plan,
    expectedFreedBytes: selected.expected,
    expectedEnough: selected.expected >= needBytes,
    kept,
    spare: selected.spare,
  }
}

/** the images every guard lets go, in eviction order, and the others with why they stay */
function guard(input: PlanInput, now: number): { kept: KeptItem[]; candidates: Keyed[] } {
  const inFlight = pullSet(input.pullsInFlight ?? [])
  const images = input.images.map(keyed)
  const ctx = {
    now,
    minAgeMs: input.policy.minAgeSeconds * 1000,
    inFlight,
    idForms: [...inFlight].some((r) => r.includes('/sha256:')),
    wanted: wantedSet(input.wanted ?? []),
    protect: protectMatcher(input.policy.protect),
    protectLabels: input.policy.protectLabels ?? [],
    newest: newestPerRepository(images, input.policy.keepPerRepository),
    keepPerRepository: input.policy.keepPerRepository,
  }
  const kept: KeptItem[] = []
  const candidates: Keyed[] = []
  for (const k of images) {
    const reason = keepReason(k, ctx)
    if (reason === null) candidates.push(k)
    else kept.push({ id: k.image.id, refs: k.refs, reason })
  }
  candidates.sort(compareForEviction)
  return { kept, candidates }
}

/** the age rule, the budget, then the threshold to needBytes; adds what stays to kept */
function select(
  input: PlanInput,
  candidates: Keyed[],
  kept: KeptItem[],
  now: number,
  needBytes: number,
): { plan: PlanItem[]; spare: PlanItem[]; expected: number } {
  const plan: PlanItem[] = []
  const spare: PlanItem[] = []
  let expected = 0
  const inScope = scopeMatcher(input.policy.include ?? [], input.policy.exclude ?? [])
  // The age rule first: what it takes goes whatever the usage, and counts toward the target.
  const maxUnused = input.policy.maxUnusedSeconds ?? null
  const rest: Keyed[] = []
  for (const k of candidates) {
    const unusedSince = Number.isFinite(k.lastUsed) ? k.lastUsed : k.firstSeen
    if (maxUnused !== null && inScope(k.image) && now - unusedSince > maxUnused * 1000) {
      const since = k.image.lastUsed ? `last used ${k.image.lastUsed}` : `never used, first seen ${k.image.firstSeen}`
      const item = itemOf(k, 'max_unused', `unused for more than maxUnusedSeconds ${maxUnused} (${since})`)
      expected += item.expectedFreedBytes
      plan.push(item)
    } else if (input.policy.thresholdScope === 'include' && !inScope(k.image)) {
      kept.push({ id: k.image.id, refs: k.refs, reason: KEPT.outOfScope })
    } else rest.push(k)
  }
  // The budget next: least recently used first, until the unique bytes left are within it.
  const budget = input.policy.maxImageBytes ?? null
  if (budget !== null) {
    let over = input.images.reduce((sum, i) => sum + expectedFreedBytes(i), 0) - expected - budget
    while (over > 0 && rest.length > 0) {
      const k = rest.shift()!
      const item = itemOf(k, 'max_image_bytes', `over maxImageBytes ${budget}: ${planReason(k)}`)
      expected += item.expectedFreedBytes
      over -= item.expectedFreedBytes
      plan.push(item)
    }
  }
  for (const k of rest) {
    const item = itemOf(k, 'threshold', planReason(k))
    const freed = item.expectedFreedBytes
    const { image } = k
    if (expected >= needBytes) {
      kept.push({ id: image.id, refs: k.refs, reason: KEPT.notNeeded })
      if (needBytes > 0) spare.push(item)
      continue
    }
    expected += freed
    plan.push(item)
  }
  return { plan, spare, expected }
}

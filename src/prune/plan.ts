// The prune planner: snapshot + policy + now → which images to remove, in which order, and why;
// and which images stay, and why. Pure: no Docker, no clock, no filesystem, so thousands of
// generated cases can test it and a dry run can show exactly what a real run would do.
//
// Guards (an image is never planned when any holds), checked in this order for the kept reason:
//   1. a container uses it, running or exited (removing it would need force, and breaks a restart);
//   1b. the runtime pins it (CRI `pinned` on containerd: the kubelet's sandbox image, labelled ones);
//   2. a pull in flight is writing it (its reference or id is in pullsInFlight);
//   3. it is in the prewarm's wanted set (configured prewarm.images and images held for a
//      rollout): prewarm pulled it for work to come, and a never-run image would otherwise be the
//      first removed;
//   4. it matches a protect glob (on repo:tag, repo, repo@digest or image id);
//   5. it was first seen less than minAgeSeconds ago. Age is by firstSeen only, not by the image's
//      created time: created is when the image was built, often months before it arrived here, so
//      a fresh pull of an old build would look old. firstSeen starts at "now" for images the agent
//      has no record of, so a lost state file protects everything for minAge instead of freeing it.
//      A firstSeen that cannot be read counts as young: when in doubt, keep.
//   6. it is among the newest keepPerRepository images of one of its repositories (newest by
//      created, the build time, which is what "newest version" means; ties by firstSeen).
// Order of the rest: dangling first, then least recently used; never used counts as the oldest
// use; ties by firstSeen, then id, so the order is total and repeatable.
//
// Two rules beside the threshold, both behind every guard above:
//   - the age rule (maxUnusedSeconds): an image unused (last used, or first seen when never used)
//     for longer is planned whatever the disk usage, first;
//   - the budget (maxImageBytes): least recently used eligible images go, next, until the images'
//     unique bytes (each image's size less its shared layers) are within it, whatever the usage;
//   - the scope (include/exclude globs on references): the age rule only takes images in scope;
//     the threshold takes every eligible image unless thresholdScope is "include".
import { usedBytesAtPercent } from '../inventory/used-percent.js'
import {
  FORMS_CACHE_SIZE,
  imageBeingPulled,
  imageWanted,
  pullSet,
  refInfo,
  refsOf,
  timeOf,
  wantedSet,
} from '../registry/image-names.js'
import picomatch from 'picomatch'
import type { DiskFacts, ImageFacts } from '../core/snapshot.js'
import { protectedBy } from './containers-plan.js'
import type { PRUNE_RULES } from '../protocol-events.js'

export type PruneRule = (typeof PRUNE_RULES)[number]

export interface PrunePolicy {
  lowPercent: number
  minAgeSeconds: number
  protect: string[]
  keepPerRepository: number
  /** images unused for longer than this are planned whatever the disk usage; null or absent: off */
  maxUnusedSeconds?: number | null
  /** globs on references: the images the age rule (and, with thresholdScope "include", the threshold) may take */
  include?: string[]
  /** globs on references taken out of that scope */
  exclude?: string[]
  thresholdScope?: 'all' | 'include'
  /** a budget for the images' unique bytes: least recently used eligible images go until under it; null: off */
  maxImageBytes?: number | null
  /** an image with one of these labels (`key` or `key=value`) is never removed */
  protectLabels?: string[]
}

export interface PlanInput {
  disk: Pick<DiskFacts, 'usedBytes' | 'availBytes'>
  images: ImageFacts[]
  policy: PrunePolicy
  now: Date
  /** free down to this usage; default policy.lowPercent */
  targetPercent?: number
  /** references (or ids) a pull in flight is writing */
  pullsInFlight?: Iterable<string>
  /** the prewarm's wanted set: references (repo:tag or repo@digest) kept while wanted */
  wanted?: Iterable<string>
}

export interface PlanItem {
  id: string
  refs: string[]
  sizeBytes: number
  /** what removing it frees for sure: its size less the layers it shares with other images */
  expectedFreedBytes: number
  lastUsed: string | null
  firstSeen: string
  dangling: boolean
  /** which rule planned it: the threshold (least recently used to the target) or the age rule */
  rule: PruneRule
  reason: string
}

export interface KeptItem {
  id: string
  refs: string[]
  reason: string
}

export interface PrunePlan {
  targetPercent: number
  /** bytes to free for usage to reach targetPercent; 0 when it already has */
  needBytes: number
  plan: PlanItem[]
  /** sum of the plan's expectedFreedBytes */
  expectedFreedBytes: number
  /** true when the plan is expected to free needBytes */
  expectedEnough: boolean
  kept: KeptItem[]
  /**
   * The eligible images beyond the estimate, in eviction order (also listed in kept as not
   * needed). The estimate can fall short (shared layers, reserved blocks root has used), so the
   * executor goes on with these while the measured disk is above the target.
   */
  spare: PlanItem[]
}

export const KEPT = {
  inUse: 'in use by a container',
  pinned: 'pinned in the runtime (CRI pinned)',
  pullInFlight: 'a pull in flight is writing it',
  outOfScope: 'outside prune.include/prune.exclude (thresholdScope: include)',
  wanted: 'wanted by prewarm',
  notNeeded: 'not needed: the target is reached without it',
} as const

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

export type ProtectMatcher = (image: Pick<ImageFacts, 'id' | 'repoTags' | 'repoDigests'>) => string | null

/**
 * A matcher that names the protect glob an image matches, or null. Most images match no glob, and
 * the planner asks for each of thousands on every plan: one combined expression (and the globs as
 * literals, which picomatch also accepts as they are) says whether any glob matches a name, and that
 * answer is kept per name, as the matcher is per list of globs, so a later plan over the same images
 * tests no expression. Only on a hit are the globs tried one by one, in order, to name the first.
 */
function protectMatcher(globs: string[]): ProtectMatcher {
  if (globs.length === 0) return () => null
  const key = globs.join('\n')
  let matcher = matchers.get(key)
  if (matcher === undefined) {
    matcher = compileProtectMatcher(globs)
    if (matchers.size >= MATCHERS_KEPT) matchers.clear()
    matchers.set(key, matcher)
  }
  return matcher
}
/** a host has a few glob lists (protect, include, exclude, a schedule's own): a handful is enough */
const MATCHERS_KEPT = 16
const matchers = new Map<string, ProtectMatcher>()

function compileProtectMatcher(globs: string[]): ProtectMatcher {
  // bash: a single * crosses '/', so "*:stable" protects nvidia/cuda:stable too.
  const options = { bash: true, dot: true }
  const compiled = globs.map((glob) => ({ glob, match: picomatch(glob, options), idPrefix: idPrefixOf(glob) }))
  const regexes = globs.map((glob) => picomatch.makeRe(glob, options))
  const combined = regexes.every((r) => r.flags === '')
    ? new RegExp(regexes.map((r) => `(?:${r.source})`).join('|'))
    : null
  const literals = new Set(globs)
  const anyGlob = (name: string) => literals.has(name) || combined === null || combined.test(name)
  /** per id, and per reference with all its forms: whether any glob matches it; bounded */
  const idHits = new Map<string, boolean>()
  const refHits = new Map<string, boolean>()
  const remember = (hits: Map<string, boolean>, name: string, hit: boolean) => {
    if (hits.size >= FORMS_CACHE_SIZE) hits.clear()
    hits.set(name, hit)
    return hit
  }
  const idHit = (id: string, bareId: string) => idHits.get(id) ?? remember(idHits, id, anyGlob(id) || anyGlob(bareId))
  const refHit = (ref: string) => refHits.get(ref) ?? remember(refHits, ref, refInfo(ref).forms.some(anyGlob))
  const prefixes = compiled.flatMap((c) => (c.idPrefix ? [c.idPrefix] : []))
  return (image) => {
    const bareId = image.id.startsWith('sha256:') ? image.id.slice('sha256:'.length) : image.id
    let hit = idHit(image.id, bareId)
    for (let i = 0; !hit && i < prefixes.length; i++) hit = bareId.startsWith(prefixes[i])
    for (let i = 0; !hit && i < image.repoTags.length; i++) hit = refHit(image.repoTags[i])
    for (let i = 0; !hit && i < image.repoDigests.length; i++) hit = refHit(image.repoDigests[i])
    if (!hit) return null
    const names = namesOf(image)
    for (const { glob, match, idPrefix } of compiled) {
      if (idPrefix && bareId.startsWith(idPrefix)) return glob
      if (names.some((n) => match(n))) return glob
    }
    return null
  }
}

/** a glob that is a plain image id or id prefix (12+ hex digits, sha256: optional) */
function idPrefixOf(glob: string): string | null {
  const m = /^(?:sha256:)?([0-9a-f]{12,64})$/.exec(glob)
  return m ? m[1] : null
}

function namesOf(image: Pick<ImageFacts, 'id' | 'repoTags' | 'repoDigests'>): string[] {
  const names = new Set<string>([image.id, image.id.replace(/^sha256:/, '')])
  for (const ref of [...image.repoTags, ...image.repoDigests]) for (const form of refInfo(ref).forms) names.add(form)
  return [...names]
}

/** An image with its times parsed once: sorting 10,000 images must not parse dates a million times. */
interface Keyed {
  image: ImageFacts
  refs: string[]
  dangling: boolean
  /** ms; -Infinity when never used */
  lastUsed: number
  /** ms; Infinity when unreadable (sorts last, and counts as young) */
  firstSeen: number
  /** ms; -Infinity when absent or unreadable */
  created: number
}

function keyed(image: ImageFacts): Keyed {
  const refs = refsOf(image)
  return {
    image,
    refs,
    dangling: refs.length === 0,
    lastUsed: timeOf(image.lastUsed, -Infinity),
    firstSeen: timeOf(image.firstSeen, Infinity),
    created: timeOf(image.createdAt, -Infinity),
  }
}

/** ids of the images that are among the newest `n` of one of their repositories, with that repository */
function newestPerRepository(images: Keyed[], n: number): Map<string, string> {
  const kept = new Map<string, string>()
  if (n <= 0) return kept
  // Only the newest n of each repository are wanted: each repository keeps a short list, newest
  // first, instead of sorting every image of it.
  const newest = new Map<string, Keyed[]>()
  for (const k of images) {
    let last: string | null = null
    for (const ref of k.refs) {
      const repo = refInfo(ref).repository
      // refs of one image usually share a repository (tag and digest): once is enough
      if (repo === last) continue
      last = repo
      let list = newest.get(repo)
      if (list === undefined) newest.set(repo, (list = []))
      // most images are older than a full list's last: one comparison turns them away
      if (list.length >= n && newerFirst(k, list[list.length - 1]) >= 0) continue
      if (list.includes(k)) continue
      let at = list.length
      while (at > 0 && newerFirst(k, list[at - 1]) < 0) at--
      if (at < n) {
        list.splice(at, 0, k)
        if (list.length > n) list.pop()
      }
    }
  }
  for (const [repo, list] of newest) for (const k of list) if (!kept.has(k.image.id)) kept.set(k.image.id, repo)
  return kept
}

/** newest first: by created, then first seen (unreadable first-seen counts as oldest here), then id */
function newerFirst(a: Keyed, b: Keyed): number {
  return (
    diff(b.created, a.created) || diff(seenForNewest(b), seenForNewest(a)) || compareStrings(a.image.id, b.image.id)
  )
}

function seenForNewest(k: Keyed): number {
  return Number.isFinite(k.firstSeen) ? k.firstSeen : -Infinity
}

/** a - b for times that may be infinite (Infinity - Infinity is NaN, which would break a sort) */
function diff(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** dangling first, then least recently used (never used first), then first seen, then id */
function compareForEviction(a: Keyed, b: Keyed): number {
  return (
    diff(a.dangling ? 0 : 1, b.dangling ? 0 : 1) ||
    diff(a.lastUsed, b.lastUsed) ||
    diff(a.firstSeen, b.firstSeen) ||
    compareStrings(a.image.id, b.image.id)
  )
}

/** Why an image must stay, or null when it may go. */
function keepReason(
  { image, firstSeen }: Keyed,
  ctx: {
    now: number
    minAgeMs: number
    inFlight: Set<string>
    /** a pull in flight names something of the form …/sha256:… */
    idForms: boolean
    wanted: Set<string>
    protect: ProtectMatcher
    protectLabels: readonly string[]
    newest: Map<string, string>
    keepPerRepository: number
  },
): string | null {
  if (image.containers.length > 0) return KEPT.inUse
  if (image.pinned) return KEPT.pinned
  if (ctx.inFlight.size > 0 && imageBeingPulled(image, ctx.inFlight, ctx.idForms)) return KEPT.pullInFlight
  if (ctx.wanted.size > 0 && imageWanted(image, ctx.wanted)) return KEPT.wanted
  const glob = ctx.protect(image)
  if (glob !== null) return `protected by "${glob}"`
  const label = image.labels ? protectedBy(image.labels, ctx.protectLabels) : null
  if (label !== null) return `protected by label ${label}`
  if (ctx.now - firstSeen < ctx.minAgeMs) {
    return Number.isFinite(firstSeen)
      ? `younger than minAgeSeconds (first seen ${image.firstSeen})`
      : 'first-seen time unknown: kept as young'
  }
  const repo = ctx.newest.get(image.id)
  if (repo !== undefined) return `among the newest ${ctx.keepPerRepository} of ${repo}`
  return null
}

function planReason({ image, dangling }: Keyed): string {
  if (dangling) return 'dangling'
  return image.lastUsed
    ? `least recently used (last used ${image.lastUsed})`
    : `least recently used (never used, first seen ${image.firstSeen})`
}

/** true when the image is in the scope the include and exclude globs draw (no include: every image) */
function scopeMatcher(include: string[], exclude: string[]): (image: ImageFacts) => boolean {
  const inc = include.length > 0 ? protectMatcher(include) : null
  const exc = exclude.length > 0 ? protectMatcher(exclude) : null
  return (image) => (inc === null || inc(image) !== null) && (exc === null || exc(image) === null)
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
  const inFlight = pullSet(input.pullsInFlight ?? [])
  const images = input.images.map(keyed)
  const ctx = {
    now: input.now.getTime(),
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

  const plan: PlanItem[] = []
  const spare: PlanItem[] = []
  let expected = 0
  const inScope = scopeMatcher(input.policy.include ?? [], input.policy.exclude ?? [])
  // The age rule first: what it takes goes whatever the usage, and counts toward the target.
  const maxUnused = input.policy.maxUnusedSeconds ?? null
  const rest: Keyed[] = []
  for (const k of candidates) {
    const unusedSince = Number.isFinite(k.lastUsed) ? k.lastUsed : k.firstSeen
    if (maxUnused !== null && inScope(k.image) && ctx.now - unusedSince > maxUnused * 1000) {
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
  return {
    targetPercent,
    needBytes,
    plan,
    expectedFreedBytes: expected,
    expectedEnough: expected >= needBytes,
    kept,
    spare,
  }
}

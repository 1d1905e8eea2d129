// What the prune planner takes and gives: the policy and inputs, the planned and the kept images
// with why, and the words a kept image's reason is given in (reports and tests match on them).
import type { DiskFacts, ImageFacts } from '../core/snapshot.js'
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

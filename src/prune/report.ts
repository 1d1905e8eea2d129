// What a prune run reports: the plan, what went and what stayed for each kind, the disk before and
// after, and the summary the prune.finished event carries. Pure: the executor fills it in.
import type { Trigger } from '../core/actions.js'
import type { EventMap } from '../core/events.js'
import type { DiskReading } from '../inventory/disk.js'
import type { ContainerKeptItem, ContainerPlanItem } from './containers-plan.js'
import type { HeldBytes } from './held-by.js'
import type { KeptItem, PlanItem } from './plan-types.js'
import type { PruneRequest } from './executor-deps.js'
import type { VolumeKeptItem, VolumePlanItem } from './volumes-plan.js'

export type PruneResult = 'ok' | 'nothing_to_do' | 'not_enough' | 'error'

export interface SkippedItem {
  id: string
  refs: string[]
  sizeBytes: number
  reason: string
}

/** one kind beside images (containers, volumes): planned, removed, not removed with the runtime's answer, kept */
export interface KindReport<P, K> {
  plan: P[]
  removed: P[]
  skipped: (P & { outcome: string })[]
  kept: K[]
}

export interface PruneReport {
  trigger: Trigger
  dryRun: boolean
  /** the named schedule whose rules the run followed; null: prune's own */
  schedule: string | null
  deep: boolean
  result: PruneResult
  /** why the run could not be carried out (result "error") */
  error?: string
  targetPercent: number
  before: DiskReading | null
  needBytes: number
  plan: PlanItem[]
  removed: PlanItem[]
  /** images Docker refused to remove (a container uses it, it is gone) */
  skipped: SkippedItem[]
  /** images whose removal failed for another reason */
  failed: SkippedItem[]
  kept: KeptItem[]
  buildCache: { prunedBytes: number } | { error: string } | null
  /** exited containers (prune.containers): planned, removed, and kept with why; null when the rule is off */
  containers: KindReport<ContainerPlanItem, ContainerKeptItem> | null
  /** dangling volumes (deep runs with prune.volumes.dangling); null when not part of the run */
  volumes: KindReport<VolumePlanItem, VolumeKeptItem> | null
  /** measured on the filesystem, from before the first removal to after the last */
  freedBytes: number
  /** what each kind gave back by the runtime's own sizes (containers: writable layer and log) */
  freedBytesByKind: { containers: number; images: number; buildCache: number; volumes: number }
  /**
   * when the run could not free enough: which kinds hold the space, largest first, from the runtime's
   * accounting after the run; null otherwise, or when that accounting failed
   */
  heldBy: HeldBytes[] | null
  after: DiskReading | null
  enough: boolean
  startedAt: string
  durationSeconds: number
}

/** the report of a run that has not started: result "error" until the run says otherwise */
export function emptyReport(req: PruneRequest, targetPercent: number, started: Date): PruneReport {
  return {
    trigger: req.trigger,
    dryRun: req.dryRun,
    schedule: req.schedule ?? null,
    deep: req.deep ?? false,
    result: 'error',
    targetPercent,
    before: null,
    needBytes: 0,
    plan: [],
    removed: [],
    skipped: [],
    failed: [],
    kept: [],
    buildCache: null,
    containers: null,
    volumes: null,
    freedBytes: 0,
    freedBytesByKind: { containers: 0, images: 0, buildCache: 0, volumes: 0 },
    heldBy: null,
    after: null,
    enough: false,
    startedAt: started.toISOString(),
    durationSeconds: 0,
  }
}

/** what each kind gave back, by the runtime's own sizes of what was removed */
export function freedBytesByKind(report: PruneReport): PruneReport['freedBytesByKind'] {
  return {
    containers: (report.containers?.removed ?? []).reduce((sum, c) => sum + c.sizeRwBytes + c.logBytes, 0),
    images: report.removed.reduce((sum, i) => sum + i.expectedFreedBytes, 0),
    buildCache: report.buildCache && 'prunedBytes' in report.buildCache ? report.buildCache.prunedBytes : 0,
    volumes: (report.volumes?.removed ?? []).reduce((sum, v) => sum + v.sizeBytes, 0),
  }
}

/** a dry run's result: what the plan expects; "ok" with nothing to free when containers would go */
export function dryResult(report: PruneReport, needBytes: number, expectedEnough: boolean): PruneResult {
  const anything = report.plan.length > 0 || (report.containers?.plan.length ?? 0) > 0
  return needBytes === 0 ? (anything ? 'ok' : 'nothing_to_do') : expectedEnough ? 'ok' : 'not_enough'
}

/** a real run's result, from what it removed and the measured disk (report.enough) */
export function runResult(report: PruneReport, needBytes: number): PruneResult {
  const removedOther =
    (report.containers?.removed.length ?? 0) > 0 ||
    (report.volumes?.removed.length ?? 0) > 0 ||
    report.freedBytesByKind.buildCache > 0 ||
    report.removed.some((p) => p.rule !== 'threshold')
  return needBytes === 0 ? (removedOther ? 'ok' : 'nothing_to_do') : report.enough ? 'ok' : 'not_enough'
}

/** The prune.finished event: what metrics, status and the coordinator need, without the image lists. */
export function summaryOf(report: PruneReport): EventMap['prune.finished'] {
  return {
    trigger: report.trigger,
    dryRun: report.dryRun,
    ...(report.schedule ? { schedule: report.schedule } : {}),
    result: report.result,
    ...(report.error ? { error: report.error } : {}),
    targetPercent: report.targetPercent,
    needBytes: report.needBytes,
    freedBytes: report.freedBytes,
    enough: report.enough,
    plannedCount: report.plan.length,
    removedCount: report.removed.length,
    skippedCount: report.skipped.length,
    failedCount: report.failed.length,
    keptCount: report.kept.length,
    usedPercentBefore: report.before?.usedPercent ?? null,
    usedPercentAfter: report.after?.usedPercent ?? null,
    freedBytesByKind: report.freedBytesByKind,
    ...(report.heldBy ? { heldBy: report.heldBy } : {}),
    durationSeconds: report.durationSeconds,
  }
}

// The prune executor: plans against a fresh disk reading, removes the planned images one by one
// (never with force), measures the disk after each removal and stops once the target is really
// reached, then reports freed bytes against needed bytes. Every run, dry or real, from any
// trigger, publishes prune.started and prune.finished; every removed or skipped image gets a
// prune.image event and an audit log line.
import type { Logger } from 'pino'
import type { Trigger } from '../agent/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus, EventMap } from '../agent/events.js'
import type { ImageFacts } from '../agent/snapshot.js'
import type { DiskReading } from '../inventory/disk.js'
import {
  KEPT,
  bytesToFree,
  isBeingPulled,
  planPrune,
  pullSet,
  type KeptItem,
  type PlanItem,
  type PrunePlan,
} from './plan.js'
import { RuntimeUnavailableError, type ContainerRuntime } from '../runtime/runtime.js'
import { planContainerRemovals, type ContainerKeptItem, type ContainerPlanItem } from './containers-plan.js'

export type PruneResult = 'ok' | 'nothing_to_do' | 'not_enough' | 'error'

export interface PruneRequest {
  trigger: Trigger
  dryRun: boolean
  /** free down to this usage instead of prune.lowPercent */
  targetPercent?: number
}

export interface SkippedItem {
  id: string
  refs: string[]
  sizeBytes: number
  reason: string
}

export interface PruneReport {
  trigger: Trigger
  dryRun: boolean
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
  containers: {
    plan: ContainerPlanItem[]
    removed: ContainerPlanItem[]
    skipped: (ContainerPlanItem & { outcome: string })[]
    kept: ContainerKeptItem[]
  } | null
  /** measured on the filesystem, from before the first removal to after the last */
  freedBytes: number
  /** what each kind gave back by the runtime's own sizes (containers: writable layer and log) */
  freedBytesByKind: { containers: number; images: number; buildCache: number }
  after: DiskReading | null
  enough: boolean
  startedAt: string
  durationSeconds: number
}

export interface PruneDeps {
  runtime: ContainerRuntime
  /** a fresh reading of the filesystem at `path` */
  measure: (path: string) => Promise<DiskReading>
  bus: EventBus
  log: Logger
  now: () => Date
  policy: AgentConfig['prune']
  /** references a pull in flight is writing; read at planning and again before each removal */
  pullsInFlight: () => Iterable<string>
  /** the prewarm's wanted set, read at planning: those images are kept ("wanted by prewarm") */
  wanted?: () => Iterable<string>
  /**
   * Ask the runtime for shared sizes when its image list left them unknown (-1; Docker before API
   * 1.42): one disk accounting per run, so the plan need not treat every image as fully shared.
   */
  sharedSizes?: boolean
  /** runs a real (not dry) prune, from planning to the last removal, as the only one on the host */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>
  /** true once the agent is stopping: the run ends after the image being removed */
  stopRequested?: () => boolean
}

export interface PruneInputs {
  /** the images as the inventory knows them (containers, last used, first seen); null: not yet known */
  images: ImageFacts[] | null
  /** the filesystem that holds Docker's data */
  diskPath: string | null
}

export interface PruneHooks {
  /** runs between planning and removal (tests use it to make the world change under the plan) */
  beforeExecute?: (plan: PrunePlan) => Promise<void> | void
  /** runs inside the removal of an image with references in several repositories, before its last one */
  beforeLastReference?: (item: PlanItem) => Promise<void> | void
}

export async function runPrune(
  deps: PruneDeps,
  inputs: PruneInputs,
  req: PruneRequest,
  hooks: PruneHooks = {},
): Promise<PruneReport> {
  const started = deps.now()
  const targetPercent = req.targetPercent ?? deps.policy.lowPercent
  const report: PruneReport = {
    trigger: req.trigger,
    dryRun: req.dryRun,
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
    freedBytes: 0,
    freedBytesByKind: { containers: 0, images: 0, buildCache: 0 },
    after: null,
    enough: false,
    startedAt: started.toISOString(),
    durationSeconds: 0,
  }
  deps.bus.publish('prune.started', { trigger: req.trigger, dryRun: req.dryRun, targetPercent })
  try {
    const run = () => execute(deps, inputs, req, report, hooks)
    await (req.dryRun || !deps.exclusive ? run() : deps.exclusive(run))
  } catch (err) {
    report.result = 'error'
    report.error = messageOf(err)
    deps.log.error({ trigger: req.trigger, err: report.error }, 'prune could not run')
  }
  report.durationSeconds = (deps.now().getTime() - started.getTime()) / 1000
  deps.bus.publish('prune.finished', summaryOf(report))
  return report
}

async function execute(
  deps: PruneDeps,
  inputs: PruneInputs,
  req: PruneRequest,
  report: PruneReport,
  hooks: PruneHooks,
): Promise<void> {
  if (inputs.images === null) throw new Error('the images are not known yet: the image collector has not run')
  if (inputs.diskPath === null) throw new Error("the disk is not known yet: neither disk.path nor Docker's root dir")
  const diskPath = inputs.diskPath
  // Under the prune lock, so no other prune's removal is in flight: names a crash left off go back first.
  if (!req.dryRun) await recoverInterrupted(deps)
  const initial = await deps.measure(diskPath)
  report.before = initial
  // Exited containers go first: the images they held become eligible for the plan below.
  const gone = await pruneContainers(deps, req, report)
  const withoutGone = inputs.images.map((i) =>
    i.containers.some((c) => gone.has(c.id)) ? { ...i, containers: i.containers.filter((c) => !gone.has(c.id)) } : i,
  )
  const images = await withSharedSizes(deps, withoutGone)
  const before = gone.size > 0 && !req.dryRun ? await deps.measure(diskPath) : initial
  const plan = planPrune({
    disk: before,
    images,
    policy: deps.policy,
    now: deps.now(),
    targetPercent: report.targetPercent,
    pullsInFlight: deps.pullsInFlight(),
    wanted: deps.wanted?.() ?? [],
  })
  Object.assign(report, { needBytes: plan.needBytes, plan: plan.plan, kept: plan.kept })

  if (req.dryRun) {
    report.after = before
    report.enough = plan.expectedEnough
    const anything = plan.plan.length > 0 || (report.containers?.plan.length ?? 0) > 0
    report.result =
      plan.needBytes === 0 ? (anything ? 'ok' : 'nothing_to_do') : plan.expectedEnough ? 'ok' : 'not_enough'
    return
  }
  await hooks.beforeExecute?.(plan)

  let now = before
  if (plan.needBytes > 0 && deps.policy.buildCache && !deps.stopRequested?.())
    now = await pruneBuildCache(deps, report, diskPath, now)
  // The plan first, then the spare images while the measured disk is still above the target:
  // the estimate is not the judge, the filesystem is.
  // The age rule's and the budget's images come first and go whatever the usage.
  for (const item of [...plan.plan, ...plan.spare]) {
    if (item.rule === 'threshold' && bytesToFree(now, report.targetPercent) === 0) break
    if (!report.plan.includes(item)) {
      report.plan = [...report.plan, item]
      report.kept = report.kept.filter((k) => k.id !== item.id)
    }
    if (deps.stopRequested?.()) {
      deps.log.warn(
        { trigger: req.trigger, removed: report.removed.length },
        'prune interrupted: the agent is stopping',
      )
      break
    }
    await removeOne(deps, req, report, item, hooks)
    now = await deps.measure(diskPath)
  }
  report.after = await deps.measure(diskPath)
  report.freedBytes = Math.max(0, initial.usedBytes - report.after.usedBytes)
  report.freedBytesByKind = {
    containers: (report.containers?.removed ?? []).reduce((sum, c) => sum + c.sizeRwBytes + c.logBytes, 0),
    images: report.removed.reduce((sum, i) => sum + i.expectedFreedBytes, 0),
    buildCache: report.buildCache && 'prunedBytes' in report.buildCache ? report.buildCache.prunedBytes : 0,
  }
  report.enough = bytesToFree(report.after, report.targetPercent) === 0
  const removedOther =
    (report.containers?.removed.length ?? 0) > 0 || report.removed.some((p) => p.rule !== 'threshold')
  report.result = plan.needBytes === 0 ? (removedOther ? 'ok' : 'nothing_to_do') : report.enough ? 'ok' : 'not_enough'
  if (report.result === 'not_enough') {
    deps.log.error(
      {
        trigger: req.trigger,
        needBytes: plan.needBytes,
        freedBytes: report.freedBytes,
        usedPercent: report.after.usedPercent,
        targetPercent: report.targetPercent,
        skipped: report.skipped.length,
        failed: report.failed.length,
        kept: report.kept.length,
        // the wanted set alone may not fit under the watermark: say which images prewarm holds
        wanted: report.kept.filter((k) => k.reason === KEPT.wanted).flatMap((k) => (k.refs.length ? k.refs : [k.id])),
      },
      'prune could not free enough: the images left are in use, wanted by prewarm, protected, too young, ' +
        'kept per repository, or could not be removed',
    )
  }
}

/**
 * Plans the exited containers to remove (prune.containers) and, in a real run, removes them, each
 * with an audit line that says what its writable layer and log held. Returns the ids gone (in a dry
 * run: those that would go), so the image plan sees the images they held as unused.
 */
async function pruneContainers(deps: PruneDeps, req: PruneRequest, report: PruneReport): Promise<Set<string>> {
  if (deps.policy.containers.exitedOlderThanSeconds === null) return new Set()
  let usage
  try {
    usage = await deps.runtime.diskUsage()
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    deps.log.warn({ err: messageOf(err) }, 'prune: cannot list containers with their sizes; no container removed')
    return new Set()
  }
  const plan = planContainerRemovals({ containers: usage.containers, policy: deps.policy.containers, now: deps.now() })
  report.containers = { plan: plan.remove, removed: [], skipped: [], kept: plan.kept }
  if (req.dryRun) return new Set(plan.remove.map((c) => c.id))
  for (const item of plan.remove) {
    if (deps.stopRequested?.()) break
    const outcome = await deps.runtime.removeContainer(item.id).catch((err) => {
      if (err instanceof RuntimeUnavailableError) throw err
      return { outcome: 'failed' as const, reason: messageOf(err) }
    })
    const reason = outcome.outcome === 'removed' ? item.reason : outcome.reason
    if (outcome.outcome === 'removed') report.containers.removed.push(item)
    else report.containers.skipped.push({ ...item, outcome: outcome.outcome, reason })
    deps.log[outcome.outcome === 'failed' ? 'warn' : 'info'](
      {
        audit: 'prune',
        kind: 'container',
        outcome: outcome.outcome,
        id: item.id,
        name: item.name,
        imageId: item.imageId,
        sizeRwBytes: item.sizeRwBytes,
        logBytes: item.logBytes,
        reason,
        trigger: req.trigger,
      },
      `prune: ${outcome.outcome} container ${item.name}`,
    )
  }
  return new Set(report.containers.removed.map((c) => c.id))
}

async function withSharedSizes(deps: PruneDeps, images: ImageFacts[]): Promise<ImageFacts[]> {
  if (!deps.sharedSizes || !images.some((i) => i.sharedSizeBytes < 0)) return images
  try {
    const shared = await deps.runtime.sharedSizes()
    return images.map((i) =>
      i.sharedSizeBytes < 0 && (shared.get(i.id) ?? -1) >= 0 ? { ...i, sharedSizeBytes: shared.get(i.id)! } : i,
    )
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    deps.log.warn(
      { err: messageOf(err) },
      'cannot read shared image sizes: images whose shared size is unknown count as freeing nothing',
    )
    return images
  }
}

async function recoverInterrupted(deps: PruneDeps): Promise<void> {
  const restored = await deps.runtime.recoverInterruptedRemovals()
  if (restored.length === 0) return
  deps.log.warn({ audit: 'prune', restored }, 'prune: put back names an interrupted removal took off')
}

async function removeOne(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  item: PlanItem,
  hooks: PruneHooks,
): Promise<void> {
  // A pull may have started since planning: look again right before removing.
  const outcome = isBeingPulled([item.id, ...item.refs], pullSet(deps.pullsInFlight()))
    ? { outcome: 'skipped' as const, reason: 'a pull in flight is writing it' }
    : await deps.runtime
        .removeImage(item, {
          beforeLastReference: hooks.beforeLastReference && (() => hooks.beforeLastReference!(item)),
        })
        .catch((err) => {
          // The runtime is away (refused, or silent past its timeout): every other image would
          // meet the same, so the run stops here and reports an error.
          if (err instanceof RuntimeUnavailableError) throw err
          return { outcome: 'failed' as const, reason: messageOf(err) }
        })
  const reason = outcome.outcome === 'removed' ? item.reason : outcome.reason
  if (outcome.outcome === 'removed') report.removed.push(item)
  else
    (outcome.outcome === 'skipped' ? report.skipped : report.failed).push({
      id: item.id,
      refs: item.refs,
      sizeBytes: item.sizeBytes,
      reason,
    })
  const entry = {
    outcome: outcome.outcome,
    id: item.id,
    tags: item.refs,
    sizeBytes: item.sizeBytes,
    reason,
    trigger: req.trigger,
  }
  deps.log[outcome.outcome === 'failed' ? 'warn' : 'info'](
    { audit: 'prune', rule: item.rule, ...entry },
    `prune: ${outcome.outcome} ${item.refs.join(', ') || item.id}`,
  )
  deps.bus.publish('prune.image', { ...entry, dryRun: false })
}

async function pruneBuildCache(
  deps: PruneDeps,
  report: PruneReport,
  diskPath: string,
  current: DiskReading,
): Promise<DiskReading> {
  try {
    const info = await deps.runtime.pruneBuildCache()
    report.buildCache = { prunedBytes: info.reclaimedBytes }
    deps.log.info(
      { audit: 'prune', outcome: 'build-cache', sizeBytes: report.buildCache.prunedBytes, trigger: report.trigger },
      'prune: build cache pruned',
    )
    return await deps.measure(diskPath)
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    report.buildCache = { error: messageOf(err) }
    deps.log.warn({ err: report.buildCache.error }, 'prune: could not prune the build cache; going on with images')
    return current
  }
}

function messageOf(err: unknown): string {
  return (err as Error | undefined)?.message ?? String(err)
}

/** The prune.finished event: what metrics, status and the coordinator need, without the image lists. */
export function summaryOf(report: PruneReport): EventMap['prune.finished'] {
  return {
    trigger: report.trigger,
    dryRun: report.dryRun,
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
    durationSeconds: report.durationSeconds,
  }
}

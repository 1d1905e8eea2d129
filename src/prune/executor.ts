// The prune executor: plans against a fresh disk reading, removes the planned images one by one
// (never with force), measures the disk after each removal and stops once the target is really
// reached, then reports freed bytes against needed bytes. Every run, dry or real, from any
// trigger, publishes prune.started and prune.finished; every removed or skipped image gets a
// prune.image event and an audit log line.
import type { Logger } from 'pino'
import type { Trigger } from '../core/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus, EventMap } from '../core/events.js'
import type { ImageFacts } from '../core/snapshot.js'
import type { DiskReading } from '../inventory/disk.js'
import { KEPT, bytesToFree, planPrune, type KeptItem, type PlanItem, type PrunePlan } from './plan.js'
import { isBeingPulled, pullSet } from '../registry/image-names.js'
import { RuntimeUnavailableError, type ContainerRuntime } from '../runtime/runtime.js'
import { planContainerRemovals, type ContainerKeptItem, type ContainerPlanItem } from './containers-plan.js'
import { planVolumeRemovals, type VolumeKeptItem, type VolumePlanItem } from './volumes-plan.js'
import { spaceHeldBy, type HeldBytes } from './held-by.js'
import type { RuntimeDiskUsage } from '../runtime/runtime.js'

export type PruneResult = 'ok' | 'nothing_to_do' | 'not_enough' | 'error'

export interface PruneRequest {
  trigger: Trigger
  dryRun: boolean
  /** free down to this usage instead of prune.lowPercent */
  targetPercent?: number
  /** the named schedule (prune.schedules) whose rules deps.policy carries; absent: prune's own */
  schedule?: string | null
  /** also prune the build cache (prune.buildCache) and dangling volumes (prune.volumes), whatever the usage */
  deep?: boolean
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
  containers: {
    plan: ContainerPlanItem[]
    removed: ContainerPlanItem[]
    skipped: (ContainerPlanItem & { outcome: string })[]
    kept: ContainerKeptItem[]
  } | null
  /** dangling volumes (deep runs with prune.volumes.dangling); null when not part of the run */
  volumes: {
    plan: VolumePlanItem[]
    removed: VolumePlanItem[]
    skipped: (VolumePlanItem & { outcome: string })[]
    kept: VolumeKeptItem[]
  } | null
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
  deps.bus.publish('prune.started', {
    trigger: req.trigger,
    dryRun: req.dryRun,
    targetPercent,
    ...(req.schedule ? { schedule: req.schedule } : {}),
  })
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
  const usage = new UsageReader(deps.runtime)
  // Exited containers go first: the images they held become eligible for the plan below.
  const gone = await pruneContainers(deps, req, report, usage)
  let freedOther = gone.size > 0
  if (req.deep) {
    // A container just removed leaves its volumes dangling: the volume rule reads the runtime afresh.
    if (gone.size > 0 && !req.dryRun) usage.forget()
    freedOther = (await pruneVolumes(deps, req, report, usage)) || freedOther
    if (deps.policy.buildCache && !req.dryRun && !deps.stopRequested?.()) {
      await pruneBuildCache(deps, report, diskPath, initial)
      freedOther = true
    }
  }
  const withoutGone = inputs.images.map((i) =>
    i.containers.some((c) => gone.has(c.id)) ? { ...i, containers: i.containers.filter((c) => !gone.has(c.id)) } : i,
  )
  const images = await withSharedSizes(deps, withoutGone)
  const before = freedOther && !req.dryRun ? await deps.measure(diskPath) : initial
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
    if (report.result === 'not_enough') report.heldBy = await heldBy(deps, report, usage)
    return
  }
  await hooks.beforeExecute?.(plan)

  let now = before
  if (plan.needBytes > 0 && deps.policy.buildCache && !report.buildCache && !deps.stopRequested?.())
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
    volumes: (report.volumes?.removed ?? []).reduce((sum, v) => sum + v.sizeBytes, 0),
  }
  report.enough = bytesToFree(report.after, report.targetPercent) === 0
  const removedOther =
    (report.containers?.removed.length ?? 0) > 0 ||
    (report.volumes?.removed.length ?? 0) > 0 ||
    report.freedBytesByKind.buildCache > 0 ||
    report.removed.some((p) => p.rule !== 'threshold')
  report.result = plan.needBytes === 0 ? (removedOther ? 'ok' : 'nothing_to_do') : report.enough ? 'ok' : 'not_enough'
  if (report.result === 'not_enough') {
    usage.forget()
    report.heldBy = await heldBy(deps, report, usage)
    const top = report.heldBy?.[0]
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
        heldBy: report.heldBy,
      },
      'prune could not free enough: the images left are in use, wanted by prewarm, protected, too young, ' +
        'kept per repository, or could not be removed' +
        (top ? `; most of the space is held by ${top.kind} (${top.bytes} bytes)` : ''),
    )
  }
}

/**
 * Plans the exited containers to remove (prune.containers) and, in a real run, removes them, each
 * with an audit line that says what its writable layer and log held. Returns the ids gone (in a dry
 * run: those that would go), so the image plan sees the images they held as unused.
 */
async function pruneContainers(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  reader: UsageReader,
): Promise<Set<string>> {
  if (deps.policy.containers.exitedOlderThanSeconds === null) return new Set()
  let usage
  try {
    usage = await reader.read()
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
        rule: 'containers_exited',
        outcome: outcome.outcome,
        id: item.id,
        name: item.name,
        imageId: item.imageId,
        sizeRwBytes: item.sizeRwBytes,
        logBytes: item.logBytes,
        reason,
        trigger: req.trigger,
        ...(req.schedule ? { schedule: req.schedule } : {}),
      },
      `prune: ${outcome.outcome} container ${item.name}`,
    )
  }
  return new Set(report.containers.removed.map((c) => c.id))
}

/**
 * Deep runs: plans the dangling volumes to remove (prune.volumes) and, in a real run, removes them,
 * each with an audit line. Returns whether any went.
 */
async function pruneVolumes(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  reader: UsageReader,
): Promise<boolean> {
  if (!deps.policy.volumes.dangling) return false
  const remove = deps.runtime.removeVolume?.bind(deps.runtime)
  if (!remove) {
    deps.log.info({ runtime: deps.runtime.kind }, 'prune: this runtime has no volumes; the volume rule does nothing')
    return false
  }
  let usage
  try {
    usage = await reader.read()
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    deps.log.warn({ err: messageOf(err) }, 'prune: cannot list volumes with their sizes; no volume removed')
    return false
  }
  const plan = planVolumeRemovals({ volumes: usage.volumes, policy: deps.policy.volumes })
  report.volumes = { plan: plan.remove, removed: [], skipped: [], kept: plan.kept }
  if (req.dryRun) return false
  for (const item of plan.remove) {
    if (deps.stopRequested?.()) break
    const outcome = await remove(item.name).catch((err) => {
      if (err instanceof RuntimeUnavailableError) throw err
      return { outcome: 'failed' as const, reason: messageOf(err) }
    })
    const reason = outcome.outcome === 'removed' ? item.reason : outcome.reason
    if (outcome.outcome === 'removed') report.volumes.removed.push(item)
    else report.volumes.skipped.push({ ...item, outcome: outcome.outcome, reason })
    deps.log[outcome.outcome === 'failed' ? 'warn' : 'info'](
      {
        audit: 'prune',
        kind: 'volume',
        rule: 'volumes_dangling',
        outcome: outcome.outcome,
        name: item.name,
        sizeBytes: item.sizeBytes,
        reason,
        trigger: req.trigger,
        ...(req.schedule ? { schedule: req.schedule } : {}),
      },
      `prune: ${outcome.outcome} volume ${item.name}`,
    )
  }
  return report.volumes.removed.length > 0
}

/** which kinds hold the space, from a fresh accounting; null (and a warning) when the runtime cannot say */
async function heldBy(deps: PruneDeps, report: PruneReport, reader: UsageReader): Promise<HeldBytes[] | null> {
  try {
    return spaceHeldBy(await reader.read(), report.kept, [...report.failed, ...report.skipped])
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) return null
    deps.log.warn({ err: messageOf(err) }, 'prune: cannot read the disk accounting to say what holds the space')
    return null
  }
}

/** the runtime's disk accounting is slow: read it once per run, and again only after removals changed it */
class UsageReader {
  private pending: Promise<RuntimeDiskUsage> | null = null
  constructor(private readonly runtime: ContainerRuntime) {}
  read(): Promise<RuntimeDiskUsage> {
    this.pending ??= this.runtime.diskUsage()
    return this.pending
  }
  forget(): void {
    this.pending = null
  }
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
    rule: item.rule,
    trigger: req.trigger,
    ...(req.schedule ? { schedule: req.schedule } : {}),
  }
  deps.log[outcome.outcome === 'failed' ? 'warn' : 'info'](
    { audit: 'prune', kind: 'image', ...entry },
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
      {
        audit: 'prune',
        kind: 'build-cache',
        rule: report.deep ? 'deep' : 'threshold',
        outcome: 'build-cache',
        sizeBytes: report.buildCache.prunedBytes,
        trigger: report.trigger,
      },
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

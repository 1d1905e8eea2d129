// The prune executor: plans against a fresh disk reading, removes the planned images one by one
// (never with force), measures the disk after each removal and stops once the target is really
// reached, then reports freed bytes against needed bytes. Every run, dry or real, from any
// trigger, publishes prune.started and prune.finished; every removed or skipped image gets a
// prune.image event and an audit log line.
import type { ImageFacts } from '../core/snapshot.js'
import type { DiskReading } from '../inventory/disk.js'
import { RuntimeUnavailableError } from '../runtime/runtime.js'
import { pruneBuildCache } from './build-cache.js'
import { pruneContainers } from './containers-removal.js'
import type { PruneDeps, PruneHooks, PruneInputs, PruneRequest } from './executor-deps.js'
import { removeImages } from './image-removal.js'
import { bytesToFree, planPrune } from './plan.js'
import { KEPT, type PrunePlan } from './plan-types.js'
import { messageOf } from './removal.js'
import { dryResult, emptyReport, freedBytesByKind, runResult, summaryOf, type PruneReport } from './report.js'
import { heldBy, UsageReader } from './usage-reader.js'
import { pruneVolumes } from './volumes-removal.js'

export async function runPrune(
  deps: PruneDeps,
  inputs: PruneInputs,
  req: PruneRequest,
  hooks: PruneHooks = {},
): Promise<PruneReport> {
  const started = deps.now()
  const targetPercent = req.targetPercent ?? deps.policy.lowPercent
  const report = emptyReport(req, targetPercent, started)
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
  const images = await withSharedSizes(deps, withoutContainers(inputs.images, gone))
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
    report.result = dryResult(report, plan.needBytes, plan.expectedEnough)
    if (report.result === 'not_enough') report.heldBy = await heldBy(deps.log, report, usage)
    return
  }
  await hooks.beforeExecute?.(plan)
  await removeImages(deps, req, report, plan, hooks, diskPath, before)
  report.after = await deps.measure(diskPath)
  report.freedBytes = Math.max(0, initial.usedBytes - report.after.usedBytes)
  report.freedBytesByKind = freedBytesByKind(report)
  report.enough = bytesToFree(report.after, report.targetPercent) === 0
  report.result = runResult(report, plan.needBytes)
  if (report.result === 'not_enough') {
    usage.forget()
    report.heldBy = await heldBy(deps.log, report, usage)
    logNotEnough(deps, req, report, plan, report.after)
  }
}

/** the error an operator is paged for: what was needed, what went, and what holds the rest */
function logNotEnough(deps: PruneDeps, req: PruneRequest, report: PruneReport, plan: PrunePlan, after: DiskReading) {
  const top = report.heldBy?.[0]
  deps.log.error(
    {
      trigger: req.trigger,
      needBytes: plan.needBytes,
      freedBytes: report.freedBytes,
      usedPercent: after.usedPercent,
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

/** the images without the containers just removed (or, in a dry run, that would be) */
function withoutContainers(images: ImageFacts[], gone: Set<string>): ImageFacts[] {
  return images.map((i) =>
    i.containers.some((c) => gone.has(c.id)) ? { ...i, containers: i.containers.filter((c) => !gone.has(c.id)) } : i,
  )
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

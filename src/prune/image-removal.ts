// The image removal run of a real prune: the plan first, then the spare images while the measured
// disk is still above the target (the estimate is not the judge, the filesystem is), each image
// looked at again for a pull in flight right before it goes, with an audit line and a prune.image
// event, and the disk measured after each.
import type { DiskReading } from '../inventory/disk.js'
import { isBeingPulled, pullSet } from '../registry/image-names.js'
import { pruneBuildCache } from './build-cache.js'
import type { PruneDeps, PruneHooks, PruneRequest } from './executor-deps.js'
import { bytesToFree } from './plan.js'
import type { PlanItem, PrunePlan } from './plan-types.js'
import { auditLine, removeEach, runFields, type Outcome } from './removal.js'
import type { PruneReport } from './report.js'

export async function removeImages(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  plan: PrunePlan,
  hooks: PruneHooks,
  diskPath: string,
  before: DiskReading,
): Promise<void> {
  let now = before
  if (plan.needBytes > 0 && deps.policy.buildCache && !report.buildCache && !deps.stopRequested?.())
    now = await pruneBuildCache(deps, report, diskPath, now)
  // The age rule's and the budget's images come first and go whatever the usage.
  await removeEach({
    items: [...plan.plan, ...plan.spare],
    stopBefore: (item) => {
      if (item.rule === 'threshold' && bytesToFree(now, report.targetPercent) === 0) return true
      if (!report.plan.includes(item)) {
        report.plan = [...report.plan, item]
        report.kept = report.kept.filter((k) => k.id !== item.id)
      }
      if (!deps.stopRequested?.()) return false
      deps.log.warn(
        { trigger: req.trigger, removed: report.removed.length },
        'prune interrupted: the agent is stopping',
      )
      return true
    },
    remove: (item) =>
      // A pull may have started since planning: look again right before removing.
      isBeingPulled([item.id, ...item.refs], pullSet(deps.pullsInFlight()))
        ? Promise.resolve({ outcome: 'skipped' as const, reason: 'a pull in flight is writing it' })
        : deps.runtime.removeImage(item, {
            beforeLastReference: hooks.beforeLastReference && (() => hooks.beforeLastReference!(item)),
          }),
    record: (item, outcome, reason) => recordImage(deps, req, report, item, outcome, reason),
    after: async () => {
      now = await deps.measure(diskPath)
    },
  })
}

function recordImage(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  item: PlanItem,
  outcome: Outcome,
  reason: string,
): void {
  if (outcome === 'removed') report.removed.push(item)
  else
    (outcome === 'skipped' ? report.skipped : report.failed).push({
      id: item.id,
      refs: item.refs,
      sizeBytes: item.sizeBytes,
      reason,
    })
  const entry = {
    outcome,
    id: item.id,
    tags: item.refs,
    sizeBytes: item.sizeBytes,
    reason,
    rule: item.rule,
    ...runFields(req),
  }
  auditLine(
    deps.log,
    outcome,
    { audit: 'prune', kind: 'image', ...entry },
    `prune: ${outcome} ${item.refs.join(', ') || item.id}`,
  )
  deps.bus.publish('prune.image', { ...entry, dryRun: false })
}

// Exited containers (prune.containers), before images are planned: the plan and, in a real run,
// the removals, each with an audit line that says what its writable layer and log held.
import type { PruneDeps, PruneRequest } from './executor-deps.js'
import { planContainerRemovals } from './containers-plan.js'
import { auditLine, removeEach, runFields } from './removal.js'
import type { PruneReport } from './report.js'
import { usageOrWarn, type UsageReader } from './usage-reader.js'

/**
 * Returns the ids gone (in a dry run: those that would go), so the image plan sees the images they
 * held as unused.
 */
export async function pruneContainers(
  deps: PruneDeps,
  req: PruneRequest,
  report: PruneReport,
  reader: UsageReader,
): Promise<Set<string>> {
  if (deps.policy.containers.exitedOlderThanSeconds === null) return new Set()
  const warning = 'prune: cannot list containers with their sizes; no container removed'
  const usage = await usageOrWarn(reader, deps.log, warning)
  if (usage === null) return new Set()
  const plan = planContainerRemovals({ containers: usage.containers, policy: deps.policy.containers, now: deps.now() })
  const containers: NonNullable<PruneReport['containers']> = {
    plan: plan.remove,
    removed: [],
    skipped: [],
    kept: plan.kept,
  }
  report.containers = containers
  if (req.dryRun) return new Set(plan.remove.map((c) => c.id))
  await removeEach({
    items: plan.remove,
    stopBefore: () => deps.stopRequested?.() ?? false,
    remove: (item) => deps.runtime.removeContainer(item.id),
    record: (item, outcome, reason) => {
      if (outcome === 'removed') containers.removed.push(item)
      else containers.skipped.push({ ...item, outcome, reason })
      auditLine(
        deps.log,
        outcome,
        {
          audit: 'prune',
          kind: 'container',
          rule: 'containers_exited',
          outcome,
          id: item.id,
          name: item.name,
          imageId: item.imageId,
          sizeRwBytes: item.sizeRwBytes,
          logBytes: item.logBytes,
          reason,
          ...runFields(req),
        },
        `prune: ${outcome} container ${item.name}`,
      )
    },
  })
  return new Set(containers.removed.map((c) => c.id))
}

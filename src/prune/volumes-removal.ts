// Deep runs: dangling volumes (prune.volumes), the plan and, in a real run, the removals, each
// with an audit line.
import type { PruneDeps, PruneRequest } from './executor-deps.js'
import { auditLine, removeEach, runFields } from './removal.js'
import type { PruneReport } from './report.js'
import { usageOrWarn, type UsageReader } from './usage-reader.js'
import { planVolumeRemovals } from './volumes-plan.js'

/** Returns whether any went. */
export async function pruneVolumes(
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
  const usage = await usageOrWarn(reader, deps.log, 'prune: cannot list volumes with their sizes; no volume removed')
  if (usage === null) return false
  const plan = planVolumeRemovals({ volumes: usage.volumes, policy: deps.policy.volumes })
  const volumes: NonNullable<PruneReport['volumes']> = { plan: plan.remove, removed: [], skipped: [], kept: plan.kept }
  report.volumes = volumes
  if (req.dryRun) return false
  await removeEach({
    items: plan.remove,
    stopBefore: () => deps.stopRequested?.() ?? false,
    remove: (item) => remove(item.name),
    record: (item, outcome, reason) => {
      if (outcome === 'removed') volumes.removed.push(item)
      else volumes.skipped.push({ ...item, outcome, reason })
      auditLine(
        deps.log,
        outcome,
        {
          audit: 'prune',
          kind: 'volume',
          rule: 'volumes_dangling',
          outcome,
          name: item.name,
          sizeBytes: item.sizeBytes,
          reason,
          ...runFields(req),
        },
        `prune: ${outcome} volume ${item.name}`,
      )
    },
  })
  return volumes.removed.length > 0
}

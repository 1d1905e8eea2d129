// The build cache (prune.buildCache): pruned whole by the runtime, in deep runs and before images
// when the disk is above the target. A failure is reported and the run goes on with images.
import type { DiskReading } from '../inventory/disk.js'
import { RuntimeUnavailableError } from '../runtime/runtime.js'
import type { PruneDeps } from './executor-deps.js'
import { messageOf } from './removal.js'
import type { PruneReport } from './report.js'

/** the disk measured after the prune, or `current` when it failed */
export async function pruneBuildCache(
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

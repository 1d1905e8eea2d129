// Making room before pulls: how much the wanted images need over the high watermark, and asking the
// prune job to free it.
import type { Trigger } from '../core/actions.js'
import { usableBytes } from '../inventory/used-percent.js'
import type { PrewarmDeps } from './deps.js'
import type { PrewarmHostFacts } from './facts.js'
import { highWatermarkBytes, mib, type PrewarmPlan } from './plan.js'

/**
 * Asks the prune job (when this agent has one) to free what the skipped pulls need: a dry run
 * first, and a real prune only when it can free enough, so nothing is removed in vain.
 */
export async function makeRoom(
  deps: Pick<PrewarmDeps, 'actions' | 'log' | 'config'>,
  plan: PrewarmPlan,
  facts: Pick<PrewarmHostFacts, 'disk'>,
  trigger: Trigger,
  dryRun: boolean,
): Promise<{ attempted: boolean; freedBytes: number; note: string }> {
  const disk = facts.disk
  if (!disk) return { attempted: false, freedBytes: 0, note: 'disk usage unknown' }
  if (!deps.actions?.has('prune'))
    return { attempted: false, freedBytes: 0, note: 'no prune job on this host to make room' }
  // Room for every pull, not only the first that did not fit: what they all add, over the watermark.
  const wantedBytes = plan.items
    .filter((i) => i.action === 'pull' || i.needBytes)
    .reduce((s, i) => s + (i.estimatedBytes ?? 0), 0)
  const usable = usableBytes(disk)
  const need = disk.usedBytes + wantedBytes - highWatermarkBytes(disk, deps.config.prune.highPercent)
  const targetPercent = Math.max(0, ((disk.usedBytes - need) / usable) * 100)
  try {
    const preview = await deps.actions.invoke('prune', { dryRun: true, targetPercent }, trigger)
    // What removal frees for sure (size less layers other images keep), not the images' sizes:
    // counting shared layers would start a prune that empties the host and still leaves no room.
    const freeable = preview.plan.reduce((s, p) => s + p.expectedFreedBytes, 0)
    if (!preview.enough && freeable < need) {
      return {
        attempted: true,
        freedBytes: 0,
        note: `a prune could free only ${mib(freeable)} of the ${mib(need)} needed, so none was run`,
      }
    }
    if (dryRun)
      return { attempted: true, freedBytes: 0, note: `a prune would free ${mib(freeable)} first to make room` }
    const { freedBytes } = await deps.actions.invoke('prune', { dryRun: false, targetPercent }, trigger)
    deps.log.info({ freedBytes, targetPercent }, 'asked the prune job to make room for pulls')
    return { attempted: true, freedBytes, note: `the prune job freed ${mib(freedBytes)} to make room, not enough` }
  } catch (err) {
    return { attempted: true, freedBytes: 0, note: `the prune job could not make room: ${(err as Error).message}` }
  }
}

// Pure: after a prune that could not free enough, which kinds of data hold the space. An operator
// paged by GpuhostPruneCouldNotFreeEnough needs to know where to look: images a container uses,
// images prewarm wants, container logs, stopped containers, build cache or volumes.
import { breakdownOf } from '../inventory/disk-breakdown.js'
import type { DiskKind } from '../core/snapshot.js'
import type { RuntimeDiskUsage } from '../runtime/runtime.js'
import { KEPT, type KeptItem } from './plan-types.js'

export type HeldKind =
  Exclude<DiskKind, 'images_unique'> | 'images_in_use' | 'images_wanted' | 'images_kept' | 'images_not_removed'

export interface HeldBytes {
  kind: HeldKind
  bytes: number
}

/** the image's own bytes by why it stayed: in use, wanted by prewarm, its removal failed, or another guard */
function imageKind(reason: string | typeof NOT_REMOVED | undefined): HeldKind {
  if (reason === NOT_REMOVED) return 'images_not_removed'
  if (reason === KEPT.inUse) return 'images_in_use'
  if (reason === KEPT.wanted) return 'images_wanted'
  return 'images_kept'
}

const NOT_REMOVED = Symbol('not removed')

/**
 * every kind that holds bytes, largest first; an image's unique bytes go to the kind its kept reason
 * names, or to images_not_removed when the run planned it and the runtime refused or failed to remove it
 */
export function spaceHeldBy(
  usage: RuntimeDiskUsage,
  kept: readonly KeptItem[],
  notRemoved: readonly { id: string }[] = [],
): HeldBytes[] {
  const { bytes } = breakdownOf(usage, { takenAt: '', durationSeconds: 0, topLogs: 0 })
  const reasons = new Map<string, string | typeof NOT_REMOVED>(kept.map((k) => [k.id, k.reason]))
  for (const { id } of notRemoved) reasons.set(id, NOT_REMOVED)
  const held = new Map<HeldKind, number>()
  const add = (kind: HeldKind, n: number) => held.set(kind, (held.get(kind) ?? 0) + n)
  for (const image of usage.images)
    add(imageKind(reasons.get(image.id)), Math.max(0, image.sizeBytes - image.sharedSizeBytes))
  for (const [kind, n] of Object.entries(bytes) as [DiskKind, number][]) if (kind !== 'images_unique') add(kind, n)
  return [...held]
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => ({ kind, bytes: n }))
    .sort((a, b) => b.bytes - a.bytes || a.kind.localeCompare(b.kind))
}

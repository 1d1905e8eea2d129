// Pure: which exited containers a prune removes before it plans images. A stopped container keeps
// its image in use (so image pruning cannot touch it), its writable layer and its log. Only exited
// containers are candidates: never a running, paused, restarting or never-started one.
import type { AgentConfig } from '../config.js'
import type { RuntimeDiskUsage } from '../runtime/runtime.js'

export type ContainerFacts = RuntimeDiskUsage['containers'][number]

export interface ContainerPlanItem {
  id: string
  name: string
  imageId: string
  /** when it finished (ISO) */
  finishedAt: string
  /** its writable layer and its log: what removing it gives back */
  sizeRwBytes: number
  logBytes: number
  reason: string
}

export interface ContainerKeptItem {
  id: string
  name: string
  reason: string
}

export interface ContainerPlan {
  remove: ContainerPlanItem[]
  kept: ContainerKeptItem[]
}

/** `key` matches a label of that key; `key=value` only that value */
export function protectedBy(labels: Record<string, string>, protect: readonly string[]): string | null {
  for (const p of protect) {
    const eq = p.indexOf('=')
    const hit = eq < 0 ? p in labels : labels[p.slice(0, eq)] === p.slice(eq + 1)
    if (hit) return p
  }
  return null
}

export function planContainerRemovals(args: {
  containers: readonly ContainerFacts[]
  policy: AgentConfig['prune']['containers']
  now: Date
}): ContainerPlan {
  const { policy } = args
  const plan: ContainerPlan = { remove: [], kept: [] }
  if (policy.exitedOlderThanSeconds === null) return plan
  const cutoff = args.now.getTime() / 1000 - policy.exitedOlderThanSeconds
  const exited = args.containers
    .filter((c) => c.state === 'exited' && c.finishedAt !== null)
    // Newest first, so the first keepPerImage of each image are the ones kept.
    .sort((a, b) => b.finishedAt! - a.finishedAt! || a.id.localeCompare(b.id))
  const seenPerImage = new Map<string, number>()
  for (const c of exited) {
    const rank = seenPerImage.get(c.imageId) ?? 0
    seenPerImage.set(c.imageId, rank + 1)
    const finished = new Date(c.finishedAt! * 1000).toISOString()
    const label = protectedBy(c.labels, policy.protectLabels)
    if (label) plan.kept.push({ id: c.id, name: c.name, reason: `protected by label ${label}` })
    else if (rank < policy.keepPerImage)
      plan.kept.push({ id: c.id, name: c.name, reason: `among the newest ${policy.keepPerImage} of its image` })
    else if (c.finishedAt! > cutoff)
      plan.kept.push({ id: c.id, name: c.name, reason: `exited at ${finished}, within exitedOlderThanSeconds` })
    else
      plan.remove.push({
        id: c.id,
        name: c.name,
        imageId: c.imageId,
        finishedAt: finished,
        sizeRwBytes: c.sizeRwBytes,
        logBytes: c.logBytes ?? 0,
        reason: `exited at ${finished}, older than ${policy.exitedOlderThanSeconds} s`,
      })
  }
  return plan
}

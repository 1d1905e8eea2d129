// Pure: which dangling volumes a deep prune removes. A volume can hold the only copy of someone's
// data (a database, a checkpoint directory), so the rule is narrow: only volumes no container,
// running or stopped, refers to; only the anonymous ones Docker made for a container unless
// prune.volumes.named says otherwise; never one with a protecting label.
import type { AgentConfig } from '../config.js'
import type { RuntimeDiskUsage } from '../runtime/runtime.js'
import { protectedBy } from './containers-plan.js'

export type VolumeFacts = RuntimeDiskUsage['volumes'][number]

export interface VolumePlanItem {
  name: string
  sizeBytes: number
  anonymous: boolean
  reason: string
}

export interface VolumeKeptItem {
  name: string
  reason: string
}

export interface VolumePlan {
  remove: VolumePlanItem[]
  /** dangling volumes the rule leaves, with why (volumes in use are not listed) */
  kept: VolumeKeptItem[]
}

export function planVolumeRemovals(args: {
  volumes: readonly VolumeFacts[]
  policy: AgentConfig['prune']['volumes']
}): VolumePlan {
  const { policy } = args
  const plan: VolumePlan = { remove: [], kept: [] }
  if (!policy.dangling) return plan
  const dangling = args.volumes.filter((v) => v.refCount === 0).sort((a, b) => a.name.localeCompare(b.name))
  for (const v of dangling) {
    const label = protectedBy(v.labels, policy.protectLabels)
    if (label) plan.kept.push({ name: v.name, reason: `protected by label ${label}` })
    else if (!v.anonymous && !policy.named)
      plan.kept.push({ name: v.name, reason: 'a named volume (prune.volumes.named is off)' })
    else
      plan.remove.push({
        name: v.name,
        sizeBytes: v.sizeBytes,
        anonymous: v.anonymous,
        reason: `dangling ${v.anonymous ? 'anonymous' : 'named'} volume: no container refers to it`,
      })
  }
  return plan
}

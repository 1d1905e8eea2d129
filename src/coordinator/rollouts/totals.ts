// A rollout's totals as the API and the rollout.finished event show them.
import type { SourceKind } from './plan.js'
import type { Rollout, RolloutHost } from './store.js'

/** one host's bytes by where they came from; pulls reported without a source kind are left out */
export function hostBytesBySource(h: RolloutHost): Record<SourceKind, number> {
  const out = { registry: 0, mirror: 0, peer: 0 }
  for (const i of h.images) if (i.status === 'pulled' && i.sourceKind) out[i.sourceKind] += i.bytesPulled
  return out
}

export function rolloutTotals(r: Rollout): {
  hosts: Record<string, number>
  bytesPulled: number
  /** bytes by where they came from; pulls an older agent reported without a source kind are left out */
  bytesBySource: Record<SourceKind, number>
} {
  const hosts: Record<string, number> = { pending: 0, running: 0, succeeded: 0, skipped: 0, failed: 0 }
  const bytesBySource = { registry: 0, mirror: 0, peer: 0 }
  for (const h of r.hosts) {
    hosts[h.state]++
    for (const [kind, n] of Object.entries(hostBytesBySource(h))) bytesBySource[kind as SourceKind] += n
  }
  return { hosts, bytesPulled: r.hosts.reduce((s, h) => s + h.bytesPulled, 0), bytesBySource }
}

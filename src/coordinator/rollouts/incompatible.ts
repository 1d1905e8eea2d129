// The images hosts are known not to run, from the coordinator's compat evaluation.
import { fleetCompat, type CompatEvaluator } from '../compat.js'
import type { FleetStore } from '../store/fleet-store.js'
import type { PlannerHost } from './plan.js'

/**
 * The images each of `hostIds` is known not to run, by the coordinator's compat evaluation over
 * the hosts' stored facts (GET /v1/compat); an image nobody has reported yet is not known.
 */
export async function knownIncompatible(
  store: FleetStore,
  evaluator: CompatEvaluator | null,
  hostIds: string[],
  images: string[],
): Promise<Map<string, PlannerHost['incompatible']>> {
  const out = new Map<string, PlannerHost['incompatible']>()
  if (!hostIds.length) return out
  const wanted = new Set(hostIds)
  const hosts = await store.hosts()
  for (const ref of images) {
    for (const verdict of fleetCompat(ref, hosts, evaluator).hosts) {
      if (!wanted.has(verdict.hostId) || verdict.compatible !== false) continue
      const list = out.get(verdict.hostId) ?? []
      list.push({ ref, reason: verdict.reason })
      out.set(verdict.hostId, list)
    }
  }
  return out
}

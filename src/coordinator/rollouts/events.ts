// The events the coordinator raises as rollouts go on, stored and listed by /v1/events.
import { COORDINATOR_HOST } from '../store/records.js'
import type { ImageOutcome } from './plan.js'
import type { CoordinatorEvent, Rollout } from './store.js'
import { rolloutTotals } from './totals.js'

export function hostFinishedEvent(
  r: Rollout,
  hostId: string,
  state: string,
  reason: string | null,
  bytesPulled: number,
  images?: ImageOutcome[],
): CoordinatorEvent {
  const data = { rolloutId: r.id, state, reason, bytesPulled, ...(images ? { images } : {}) }
  return { type: 'rollout.host.finished', hostId, data }
}

export function finishedEvent(r: Rollout): CoordinatorEvent {
  return {
    type: 'rollout.finished',
    hostId: COORDINATOR_HOST,
    data: { rolloutId: r.id, state: r.state, ...rolloutTotals(r) },
  }
}

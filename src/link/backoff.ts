// Reconnect delays: exponential with full jitter (AWS architecture blog, "Exponential Backoff and
// Jitter"), so a fleet that lost its coordinator at once does not come back in lockstep.

export interface BackoffPolicy {
  baseMs: number
  maxMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 60_000 }

/** The ceiling for attempt n (0-based): base·2ⁿ, capped at max. */
export function backoffCeiling(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 30)
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exp)
}

/** The delay before attempt n: uniform in [base/2, ceiling]; `random` returns [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, policy)
  const floor = Math.min(policy.baseMs / 2, ceiling)
  return Math.round(floor + random() * (ceiling - floor))
}

// Retry delays for loops that reconnect or restart on their own (the coordinator link, a component
// whose start failed): exponential with full jitter, as the exponential-backoff library computes it
// for the promise retries (pulls, the Docker event stream), so a fleet that lost its coordinator at
// once does not come back in lockstep (AWS architecture blog, "Exponential Backoff and Jitter").

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

/** The delay before attempt n: uniform in [0, ceiling] (full jitter); `random` returns [0, 1). */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.round(random() * backoffCeiling(attempt, policy))
}

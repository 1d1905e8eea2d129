// One plan item carried out: pulled with retries when the plan says pull, its result published.
import { backOff } from 'exponential-backoff'
import { millis, type PrewarmDeps } from './deps.js'
import type { PeerSource } from './peer-fetch.js'
import type { PlanItem } from './plan.js'
import { NotFoundEverywhere, pullFromSources, type Fetched } from './pull-sources.js'
import { resultStatus, type PeerFailure, type PullResult } from './result.js'

/** Carries out one plan item and publishes its result. */
export async function settleItem(deps: PrewarmDeps, item: PlanItem, peers: PeerSource[]): Promise<PullResult> {
  const now = millis(deps.now)
  const started = now()
  const peerFailures: PeerFailure[] = []
  let result: PullResult
  if (item.action !== 'pull') {
    result = {
      ref: item.ref,
      status: resultStatus(item.action),
      reason: item.reason,
      source: item.remote?.registry ?? null,
      durationSeconds: 0,
    }
  } else {
    try {
      const got = await pullWithRetries(deps, item, peers, peerFailures)
      result = {
        ref: item.ref,
        status: 'pulled',
        reason: item.reason,
        source: got.source,
        sourceKind: got.kind,
        durationSeconds: (now() - started) / 1000,
        bytesPulled: got.bytes ?? item.remote?.compressedBytes ?? 0,
      }
    } catch (err) {
      result = {
        ref: item.ref,
        status: 'failed',
        reason: (err as Error).message,
        source: null,
        durationSeconds: (now() - started) / 1000,
      }
    }
  }
  if (item.warnings.length) result.warnings = item.warnings
  if (item.action === 'skip' && item.skip) result.skip = item.skip
  if (peerFailures.length) result.peerFailures = peerFailures
  result.bytesPulled ??= 0
  deps.bus.publish(result.status === 'failed' ? 'pull.failed' : 'pull.finished', { ...result })
  deps.onResult?.(result)
  return result
}

async function pullWithRetries(
  deps: PrewarmDeps,
  item: PlanItem,
  peers: PeerSource[],
  peerFailures: PeerFailure[],
): Promise<Fetched> {
  const { retries } = deps.config.prewarm
  return backOff(() => pullFromSources(deps, item, peers, peerFailures), {
    numOfAttempts: retries + 1,
    startingDelay: deps.retryMinMs ?? 1000,
    timeMultiple: 2,
    maxDelay: 60_000,
    jitter: 'full',
    retry: (error: Error, attemptNumber: number) => {
      if (error instanceof NotFoundEverywhere) return false
      deps.log.warn(
        { ref: item.ref, attempt: attemptNumber, retriesLeft: retries + 1 - attemptNumber, err: error.message },
        'pull attempt failed',
      )
      return true
    },
  })
}

// One attempt at one image: the peers the coordinator named, then the mirrors, then the registry.
import { setTimeout as sleep } from 'node:timers/promises'
import { PullError } from '../runtime/runtime.js'
import { parseImageRef } from '../registry/reference.js'
import type { PrewarmDeps } from './deps.js'
import { LocalLoadError, PeerBreachError, PeerBusyError, type PeerSource } from './peer-fetch.js'
import { loadFromPeer } from './peer-load.js'
import type { PlanItem } from './plan.js'
import { pullFrom } from './registry-pull.js'
import type { PeerFailure, SourceKind } from './result.js'

/** "not found" from every source: a retry would not change it */
export class NotFoundEverywhere extends Error {}

export interface Fetched {
  source: string
  kind: SourceKind
  /** bytes read, where they were counted (a peer's archive); else the manifest's compressed size */
  bytes?: number
}

/** times one peer answering 503 (at its peers.maxUploads) is asked again before the next source */
const PEER_BUSY_RETRIES = 3

/**
 * One attempt: the peers the coordinator named, then each mirror in order, then the registry
 * itself. A peer that failed (refused, died mid-stream, sent other bytes) is not asked again.
 */
export async function pullFromSources(
  deps: PrewarmDeps,
  item: PlanItem,
  peers: PeerSource[],
  peerFailures: PeerFailure[],
): Promise<Fetched> {
  const ref = parseImageRef(item.ref)
  const sources = deps.source.sourcesFor(ref.domain)
  const failures: string[] = []
  let allNotFound = true
  const busyAnswers = new Map<PeerSource, number>()
  while (peers.length > 0 && item.remote?.configDigest) {
    const peer = peers[0]
    try {
      const bytes = await loadFromPeer(deps, item, ref, peer, item.remote.configDigest)
      return { source: `peer:${peer.host}`, kind: 'peer', bytes }
    } catch (err) {
      peers.shift()
      const busy = busyAnswers.get(peer) ?? 0
      if (err instanceof PeerBusyError && busy < PEER_BUSY_RETRIES) {
        // A busy peer is not a failed one: its other uploads end soon, and waiting for it costs less
        // than the registry. It goes to the back of the line; when the next in line was busy too, wait.
        busyAnswers.set(peer, busy + 1)
        peers.push(peer)
        deps.log.info({ ref: item.ref, peer: peer.host, retryAfter: err.retryAfterSeconds }, 'peer busy: asked again')
        if (busyAnswers.has(peers[0])) await sleep(err.retryAfterSeconds * 1000)
        continue
      }
      allNotFound = false
      // a busy peer asked its last time is not reported: it did nothing wrong, and its slots are counted
      // nor is a load that failed on this host (its engine, its disk)
      const breach = err instanceof PeerBreachError
      if (!(err instanceof PeerBusyError || err instanceof LocalLoadError))
        peerFailures.push({ host: peer.host, reason: (err as Error).message, ...(breach ? { breach } : {}) })
      failures.push(`peer ${peer.host}: ${(err as Error).message}`)
      if (breach) deps.log.error({ ref: item.ref, peer: peer.host, err: (err as Error).message }, 'peer archive breach')
      else
        deps.log.warn({ ref: item.ref, peer: peer.host, err: (err as Error).message }, 'peer fetch failed: next source')
    }
  }
  for (const source of sources) {
    try {
      await pullFrom(deps, item, ref, source)
      return { source, kind: source === ref.domain ? 'registry' : 'mirror' }
    } catch (err) {
      failures.push(`${source}: ${(err as Error).message}`)
      if (!(err instanceof PullError && err.notFound)) allNotFound = false
    }
  }
  const message = `pull failed from ${failures.join('; ')}`
  throw allNotFound ? new NotFoundEverywhere(message) : new Error(message)
}

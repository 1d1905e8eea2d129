// One image from one peer of the fleet, its archive loaded into the runtime.
import type { ImageRef } from '../registry/reference.js'
import { formatRef } from '../registry/reference.js'
import { attemptSignal } from './attempt-signal.js'
import type { PrewarmDeps } from './deps.js'
import { fetchFromPeer, type PeerSource } from './peer-fetch.js'
import type { PlanItem } from './plan.js'
import { progressReporter } from './pull-progress.js'

/** one peer's archive into the runtime, under the same stall and attempt limits as a pull */
export async function loadFromPeer(
  deps: PrewarmDeps,
  item: PlanItem,
  ref: ImageRef,
  peer: PeerSource,
  configDigest: string,
): Promise<number> {
  const attempt = attemptSignal(deps.config.prewarm)
  const total = item.remote?.compressedBytes ?? 0
  const report = progressReporter(deps, item.ref, `peer:${peer.host}`)
  let done = 0
  const names = [item.ref, formatRef(ref)]
  for (const name of names) deps.pulls.add(name)
  try {
    return await fetchFromPeer(peer, {
      runtime: deps.runtime,
      ref,
      configDigest,
      caFile: deps.peerCaFile,
      allowLoopback: deps.peerAllowLoopback,
      signal: attempt.signal,
      onReceived: () => attempt.transferred(),
      onBytes: (n) => {
        attempt.progressed()
        done += n
        report({ bytesDone: done, bytesTotal: Math.max(total, done) })
      },
    }).catch((err) => {
      if (attempt.signal.aborted) throw new Error(attempt.why())
      throw err
    })
  } finally {
    attempt.done()
    for (const name of names) deps.pulls.remove(name)
  }
}

// Serving-side peer series: bytes sent to peers, uploads streaming now and how they ended, and
// requests turned away by reason. The peer listener counts into PeerServeStats; a scrape reads it.
// (The fetching side is gpuhost_prewarm_fetched_bytes_total{source_kind="peer"}.)
import { Counter, Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type Registries } from '../core/metric-parts.js'

export const REFUSAL_REASONS = ['unauthorized', 'forbidden', 'not_found', 'busy', 'other'] as const
export type RefusalReason = (typeof REFUSAL_REASONS)[number]

/** the reason label of a refusal's HTTP status */
export function refusalReason(status: number): RefusalReason {
  if (status === 401) return 'unauthorized'
  if (status === 403) return 'forbidden'
  if (status === 404) return 'not_found'
  if (status === 503) return 'busy'
  return 'other'
}

/** what the peer listener counts; monotonic except uploadsInFlight */
export class PeerServeStats {
  bytesServed = 0
  uploadsInFlight = 0
  readonly uploads = { complete: 0, cut: 0 }
  readonly refused: Record<RefusalReason, number> = { unauthorized: 0, forbidden: 0, not_found: 0, busy: 0, other: 0 }
}

/** registers the series; `stats` answers null while this host does not serve peers (all series read 0) */
export function registerPeerMetrics(stats: () => PeerServeStats | null, reg: Registries): void {
  // Counters are set from the listener's own totals at scrape time (reset, then the total).
  new Counter({
    name: `${P}peer_served_bytes_total`,
    help: 'bytes of image archives sent to peer hosts (peers.serve), cut uploads included',
    registers: reg,
    collect() {
      this.reset()
      this.inc(stats()?.bytesServed ?? 0)
    },
  })
  new Gauge({
    name: `${P}peer_uploads_in_flight`,
    help: 'image exports streaming to peers now (at most peers.maxUploads)',
    registers: reg,
    collect() {
      this.set(stats()?.uploadsInFlight ?? 0)
    },
  })
  new Counter({
    name: `${P}peer_uploads_total`,
    help: 'image exports to peers by how they ended: complete, or cut (the peer went away or the engine failed)',
    labelNames: ['result'],
    registers: reg,
    collect() {
      const s = stats()
      this.reset()
      for (const result of ['complete', 'cut'] as const) this.inc({ result }, s?.uploads[result] ?? 0)
    },
  })
  new Counter({
    name: `${P}peer_requests_refused_total`,
    help:
      'peer requests turned away: unauthorized (401), forbidden (403: no rollout holds the image), ' +
      'not_found (404), busy (503: beyond maxUploads), other',
    labelNames: ['reason'],
    registers: reg,
    collect() {
      const s = stats()
      this.reset()
      for (const reason of REFUSAL_REASONS) this.inc({ reason }, s?.refused[reason] ?? 0)
    },
  })
}

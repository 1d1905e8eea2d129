// What a running host's prewarm command made of it: the per-image outcomes its result reports, and
// the host's state once the command is finished.
import type { CommandRecord, FleetStore } from '../store/fleet-store.js'
import { hostOutcome, SOURCE_KINDS, type ImageOutcome, type SourceKind } from './plan.js'
import type { CoordinatorEvent, Rollout, RolloutHost } from './store.js'
import { hostFinishedEvent } from './events.js'

/** A running host whose command has a result becomes succeeded, skipped or failed; null while it runs. */
export async function hostResult(
  store: FleetStore,
  r: Rollout,
  h: RolloutHost,
): Promise<{ patch: Partial<RolloutHost>; event: CoordinatorEvent } | null> {
  const command = h.commandId ? await store.command(h.commandId) : null
  if (command && (command.status === 'pending' || command.status === 'running')) return null
  const images = [...h.images, ...(command ? reportedImages(command) : [])]
  const outcome = command?.status === 'succeeded' ? hostOutcome(images) : null
  const state = outcome?.state ?? 'failed'
  const reason = outcome ? outcome.reason : `the prewarm command failed: ${command?.error ?? 'it is gone'}`
  const bytesPulled = images.reduce((s, i) => s + i.bytesPulled, 0)
  const finishedAt = new Date().toISOString()
  return {
    patch: { state, reason, images, bytesPulled, finishedAt },
    event: hostFinishedEvent(r, h.hostId, state, reason, bytesPulled, images),
  }
}

/** the per-image outcomes of a prewarm command's result (a PrewarmReport) */
function reportedImages(command: CommandRecord): ImageOutcome[] {
  const results = (command.result as { results?: unknown } | null)?.results
  if (!Array.isArray(results)) return []
  return results.map((raw) => {
    const r = raw as Partial<ImageOutcome>
    return {
      ref: String(r.ref),
      status: r.status ?? 'failed',
      reason: r.reason ?? '',
      ...(r.skip ? { skip: r.skip } : {}),
      bytesPulled: typeof r.bytesPulled === 'number' ? r.bytesPulled : 0,
      ...(SOURCE_KINDS.includes(r.sourceKind as SourceKind) ? { sourceKind: r.sourceKind } : {}),
      ...peerFailures((raw as { peerFailures?: unknown }).peerFailures),
    }
  })
}

/**
 * the hosts of a result's `peerFailures` ({ host, reason, breach? }[]), and those of them reported
 * for a breach; nothing when absent or malformed
 */
function peerFailures(raw: unknown): { peerFailures?: string[]; peerBreaches?: string[] } {
  if (!Array.isArray(raw)) return {}
  const failures = raw.filter((f): f is { host: string; breach?: unknown } => typeof f?.host === 'string')
  const breaches = failures.filter((f) => f.breach === true).map((f) => f.host)
  return {
    ...(failures.length ? { peerFailures: failures.map((f) => f.host) } : {}),
    ...(breaches.length ? { peerBreaches: breaches } : {}),
  }
}

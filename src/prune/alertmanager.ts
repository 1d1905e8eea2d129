// Alertmanager's webhook (version 4; its schema is in http/alertmanager-schema.ts), reduced to one
// decision: does any alert in it ask this host to prune now? Resolved alerts, alerts for other hosts
// and repeats of an alert already acted on (same groupKey and fingerprint within the window) start nothing.
import { createHash } from 'node:crypto'
import type { Clock } from '../core/clock.js'
import { parseAlertmanagerPayload, type Alert, type AlertmanagerPayload } from '../http/alertmanager-schema.js'

export { parseAlertmanagerPayload, type Alert, type AlertmanagerPayload }

export type AlertDecision = 'prune' | 'resolved' | 'other host' | 'duplicate'

export interface AlertVerdict {
  fingerprint: string
  alertname: string | null
  decision: AlertDecision
}

/** An alert is for this host unless its host or hostId label names another one. */
function isForHost(alert: Alert, hostId: string): boolean {
  return [alert.labels.hostId, alert.labels.host].every((named) => named === undefined || named === hostId)
}

/** Alertmanager's fingerprint, or one made from the labels when an old version sent none. */
function fingerprintOf(alert: Alert): string {
  if (alert.fingerprint) return alert.fingerprint
  const sorted = Object.keys(alert.labels)
    .sort()
    .map((k) => [k, alert.labels[k]])
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16)
}

/**
 * Remembers the alerts acted on, so Alertmanager's repeats (group_interval, repeat_interval, a
 * retried delivery) do not start a prune each time. The clock is passed in.
 */
export class AlertDeduper {
  private readonly seen = new Map<string, number>()

  constructor(
    private readonly windowMs: number,
    private readonly now: Clock,
  ) {}

  decide(payload: AlertmanagerPayload, hostId: string): AlertVerdict[] {
    const now = this.now().getTime()
    for (const [key, at] of this.seen) if (now - at >= this.windowMs) this.seen.delete(key)
    return payload.alerts.map((alert) => {
      const fingerprint = fingerprintOf(alert)
      const verdict = (decision: AlertDecision): AlertVerdict => ({
        fingerprint,
        alertname: alert.labels.alertname ?? null,
        decision,
      })
      if (alert.status !== 'firing') return verdict('resolved')
      if (!isForHost(alert, hostId)) return verdict('other host')
      const key = `${payload.groupKey}\u0000${fingerprint}`
      if (this.seen.has(key)) return verdict('duplicate')
      this.seen.set(key, now)
      return verdict('prune')
    })
  }
}

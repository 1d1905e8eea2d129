// Alertmanager webhook (v4) → the hosts to prune. Pure: the payload and the known hosts in, the
// targets and the reasons for skipped alerts out.
import { alertmanagerPayloadSchema, type AlertmanagerPayload } from '../http/alertmanager-schema.js'

export { alertmanagerPayloadSchema }

/** what routing reads of a payload */
export type RoutedPayload = { alerts: Pick<AlertmanagerPayload['alerts'][number], 'status' | 'labels'>[] }

export interface AlertRouting {
  /** hosts to prune, each once, in the order their first alert came */
  hostIds: string[]
  skipped: { alertname: string | null; reason: string }[]
}

/** `instance` is usually HOST:PORT; IPv6 comes as [ADDR]:PORT. A bare IPv6 address is left whole. */
export function hostOfInstance(instance: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(instance)
  if (bracketed) return bracketed[1]
  const parts = instance.split(':')
  if (parts.length === 2 && /^\d+$/.test(parts[1])) return parts[0]
  return instance
}

const shortName = (name: string): string => name.split('.')[0]

/**
 * Matches a label to a known host: exactly by its full name; else, when one of the two is a short
 * name, by the short name, but only when exactly one known host answers to it (node-1.dc1 never
 * matches node-1.dc2, and node-1 is ambiguous when both are known, or node-1 and node-1.dc2).
 */
function matchHost(name: string, known: Set<string>): { hostId: string } | { reason: string } {
  if (known.has(name)) return { hostId: name }
  const short = shortName(name)
  const sameShort = [...known].filter((h) => shortName(h) === short)
  if (sameShort.length > 1) return { reason: `${name} is ambiguous: ${sameShort.join(', ')}` }
  if (sameShort.length === 1 && (sameShort[0] === short || name === short)) return { hostId: sameShort[0] }
  return { reason: `no known host ${name}` }
}

export function routeAlerts(payload: RoutedPayload, knownHosts: Iterable<string>): AlertRouting {
  const known = new Set(knownHosts)
  const hostIds: string[] = []
  const skipped: AlertRouting['skipped'] = []
  for (const alert of payload.alerts) {
    const alertname = alert.labels.alertname ?? null
    if (alert.status !== 'firing') {
      skipped.push({ alertname, reason: `status ${alert.status}` })
      continue
    }
    const named =
      alert.labels.host ??
      alert.labels.hostId ??
      (alert.labels.instance ? hostOfInstance(alert.labels.instance) : undefined)
    if (!named) {
      skipped.push({ alertname, reason: 'no host, hostId or instance label' })
      continue
    }
    const match = matchHost(named, known)
    if ('reason' in match) {
      skipped.push({ alertname, reason: match.reason })
      continue
    }
    if (!hostIds.includes(match.hostId)) hostIds.push(match.hostId)
  }
  return { hostIds, skipped }
}

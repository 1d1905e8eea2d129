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

/** Matches a label to a known host: exactly, else by the short name of an FQDN. */
function matchHost(name: string, known: Set<string>): string | null {
  if (known.has(name)) return name
  const short = name.split('.')[0]
  return short && known.has(short) ? short : null
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
    const named = alert.labels.host ?? alert.labels.hostId ?? (alert.labels.instance ? hostOfInstance(alert.labels.instance) : undefined)
    if (!named) {
      skipped.push({ alertname, reason: 'no host, hostId or instance label' })
      continue
    }
    const hostId = matchHost(named, known)
    if (!hostId) {
      skipped.push({ alertname, reason: `no known host ${named}` })
      continue
    }
    if (!hostIds.includes(hostId)) hostIds.push(hostId)
  }
  return { hostIds, skipped }
}

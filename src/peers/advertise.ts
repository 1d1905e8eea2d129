// What this host tells the coordinator about its peer listener (in the hello's facts), so the
// coordinator can name it as a source in other hosts' prewarm commands.
import type { AgentConfig } from '../config.js'
import type { PeerServing } from '../protocol.js'
import { splitHostPort } from '../http/server.js'

const WILDCARDS = new Set(['', '0.0.0.0', '::', '0:0:0:0:0:0:0:0'])

/**
 * peers.advertiseUrl, else http://LISTEN (https:// with peers.tls) when the listener is bound to
 * one address. A wildcard listen answers on every address of the host, and which of them the other
 * hosts can reach is not the host's to guess (a management network, a NAT, a second NIC): null then.
 */
export function advertisedPeerUrl(
  peers: Pick<AgentConfig['peers'], 'listen' | 'advertiseUrl'> & { tls?: { certFile: string | null } },
): string | null {
  if (peers.advertiseUrl) return peers.advertiseUrl.replace(/\/+$/, '')
  const { host, port } = splitHostPort(peers.listen)
  if (WILDCARDS.has(host) || port === 0) return null
  const scheme = peers.tls?.certFile ? 'https' : 'http'
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * the hello's `peers` fact: null when this host does not serve, cannot (no image export, or no link
 * token to check peer tokens with), or has no URL to give
 */
export function peerServingFact(
  peers: Pick<AgentConfig['peers'], 'serve' | 'listen' | 'advertiseUrl' | 'maxUploads'> & {
    tls?: { certFile: string | null }
  },
  canServe: boolean,
): PeerServing | null {
  if (!peers.serve || !canServe) return null
  const url = advertisedPeerUrl(peers)
  return url === null ? null : { url, maxUploads: peers.maxUploads }
}

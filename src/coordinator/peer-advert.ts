// What the coordinator keeps of a host's advertised peer listener (its hello's `facts.peers`), decided
// when the hello arrives. Pure: the hub passes the connection's remote address and credential.
//
// The URL is where other hosts are sent with a grant, so a host that lies about it could point them
// at any address they reach (an internal service, a cloud metadata endpoint). An address written as
// an IP literal is kept only when it is the address the hello came from; link-local and unspecified
// addresses never. `localhost` and the names under it (RFC 6761: they are loopback wherever they
// are resolved) never either: every fetcher would be sent to its own loopback. Any other hostname
// cannot be checked without trusting DNS and is kept (SECURITY.md).
import { BlockList, isIP } from 'node:net'
import type { PeerServing } from '../protocol.js'

/** which credential the host authenticated with: grants it is to check are signed with the same one */
export type PeerGrantKey = 'host' | 'shared'

/** the advertised listener as stored: what the host said, and the credential it checks grants with */
export interface StoredPeerServing extends PeerServing {
  /** absent in rows stored before it was kept: signed by the coordinator's auth mode then */
  key?: PeerGrantKey
}

const NEVER = new BlockList()
NEVER.addSubnet('169.254.0.0', 16, 'ipv4')
NEVER.addAddress('0.0.0.0', 'ipv4')
NEVER.addSubnet('fe80::', 10, 'ipv6')
NEVER.addAddress('::', 'ipv6')

export function acceptPeerAdvert(
  peers: PeerServing | undefined,
  conn: { remoteAddress: string | null; sharedCredential: boolean },
): { peers: StoredPeerServing | null; refused: string | null } {
  if (!peers) return { peers: null, refused: null }
  let host: string
  try {
    host = new URL(peers.url).hostname.replace(/^\[(.*)\]$/, '$1')
  } catch {
    return { peers: null, refused: `${peers.url} is not a URL` }
  }
  if (isLocalhostName(host)) return { peers: null, refused: `${host} names each fetcher's own loopback` }
  const literal = plainAddress(host)
  if (literal) {
    if (NEVER.check(literal.address, literal.type))
      return { peers: null, refused: `${host} is a link-local or unspecified address` }
    const remote = conn.remoteAddress === null ? null : plainAddress(conn.remoteAddress)
    if (!remote || remote.type !== literal.type || !sameAddress(literal, remote.address))
      return { peers: null, refused: `${host} is not the address the host connected from (${conn.remoteAddress})` }
  }
  return { peers: { ...peers, key: conn.sharedCredential ? 'shared' : 'host' }, refused: null }
}

/** localhost, *.localhost, with or without the root's trailing dot (the URL parser has lowered the case) */
function isLocalhostName(host: string): boolean {
  const name = host.replace(/\.+$/, '')
  return name === 'localhost' || name.endsWith('.localhost')
}

/** an IP address with its family, an IPv4-mapped IPv6 address as IPv4; null for a hostname */
function plainAddress(address: string): { address: string; type: 'ipv4' | 'ipv6' } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return { address: mapped[1], type: 'ipv4' }
  const family = isIP(address)
  return family === 0 ? null : { address, type: family === 4 ? 'ipv4' : 'ipv6' }
}

/** the same address however it is written (IPv6 has many spellings) */
function sameAddress(a: { address: string; type: 'ipv4' | 'ipv6' }, b: string): boolean {
  const list = new BlockList()
  list.addAddress(a.address, a.type)
  return list.check(b, a.type)
}

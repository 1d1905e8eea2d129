// Where a fetching host may connect to read a peer's image: an address of the fleet, never its own
// loopback, a link-local address (the cloud metadata service at 169.254.169.254), an unspecified,
// multicast or broadcast one. The check runs on the addresses a name resolves to when the connection
// is made, and the connection goes only to those: `localhost`, a hostname whose record points at
// 127.0.0.1 and a name rebound after the coordinator stored it are all refused alike. The coordinator
// checks adverts too (src/coordinator/peer-advert.ts), but it cannot see what a name resolves to on
// the fetching host; this is the check that can. `peers.allowLoopback` lets a fleet that lives on one
// machine (a lab, a test) use 127.0.0.1.
import { lookup as dnsLookup } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'

function blockList(v4: [string, number][], v6: [string, number][]): BlockList {
  const list = new BlockList()
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4')
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6')
  return list
}

const LOOPBACK = blockList([['127.0.0.0', 8]], [['::1', 128]])
// An IPv6 address written as IPv4-mapped (::ffff:127.0.0.1) is checked against the IPv4 rules by BlockList.
const NEVER: [string, BlockList][] = [
  ['link-local', blockList([['169.254.0.0', 16]], [['fe80::', 10]])],
  // 0.0.0.0/8 and :: reach this host's own listeners on Linux
  ['unspecified', blockList([['0.0.0.0', 8]], [['::', 128]])],
  ['multicast', blockList([['224.0.0.0', 4]], [['ff00::', 8]])],
  ['broadcast', blockList([['255.255.255.255', 32]], [])],
]

/** why a peer must not be fetched from `address` (an IP address), or null when it may */
export function peerAddressRefusal(address: string, allowLoopback: boolean): string | null {
  const family = isIP(address)
  if (family === 0) return 'not an IP address'
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (!allowLoopback && LOOPBACK.check(address, type)) return 'a loopback address'
  for (const [kind, list] of NEVER)
    if (list.check(address, type)) return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`
  return null
}

/** a peer URL or the address its name resolved to is not a peer address: nothing was sent to it */
export class PeerAddressError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PeerAddressError'
  }
}

const FIX = 'peers are fetched only from fleet addresses (peers.allowLoopback: true for a fleet on one machine)'

/** throws when the URL's host is an IP literal a peer must not have (a literal is connected to without a lookup) */
export function checkPeerUrlHost(url: URL, allowLoopback: boolean): void {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (isIP(host) === 0) return
  const refused = peerAddressRefusal(host, allowLoopback)
  if (refused) throw new PeerAddressError(`${host} is ${refused}: ${FIX}`)
}

/**
 * A `lookup` for the peer connection: the system's resolver, and an error instead of an address when
 * any address the name resolves to is one a peer must not have (a name that also points at loopback
 * is not a fleet address, whichever record the connection would have used).
 */
export function peerLookup(allowLoopback: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0)
      for (const a of addresses) {
        const refused = peerAddressRefusal(a.address, allowLoopback)
        if (refused)
          return callback(new PeerAddressError(`${hostname} resolves to ${a.address}, ${refused}: ${FIX}`), '', 0)
      }
      if (options.all) callback(null, addresses)
      else callback(null, addresses[0].address, addresses[0].family)
    })
  }
}

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
// Cloud metadata services outside 169.254/16: AWS's IPv6 endpoint and Alibaba Cloud's.
const METADATA = blockList([['100.100.100.200', 32]], [['fd00:ec2::254', 128]])
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
  if (METADATA.check(address, type)) return 'a cloud metadata address'
  for (const [kind, list] of NEVER)
    if (list.check(address, type)) return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`
  // An IPv6 address that carries an IPv4 one (NAT64, 6to4, IPv4-compatible or -translated) reaches
  // that IPv4 address where the host routes it: judged as that address.
  const inner = type === 'ipv6' ? embeddedIpv4(address) : null
  if (inner) {
    const refused = peerAddressRefusal(inner, allowLoopback)
    if (refused) return `${refused.replace(/ address$/, '')} address inside ${address} (${inner})`
  }
  return null
}

/** the IPv4 address inside an IPv6 one of the prefixes that embed it; null for any other */
function embeddedIpv4(address: string): string | null {
  const words = ipv6Words(address)
  if (!words) return null
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  const zero = (from: number, to: number) => words.slice(from, to).every((w) => w === 0)
  // ::a.b.c.d (IPv4-compatible), ::ffff:0:a.b.c.d (IPv4-translated), 64:ff9b::a.b.c.d (NAT64)
  // (::/96 without ::1 and ::, which are IPv6's own loopback and unspecified addresses)
  if ((zero(0, 6) && words[6] !== 0) || (zero(0, 4) && words[4] === 0xffff && words[5] === 0))
    return v4(words[6], words[7])
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return v4(words[6], words[7])
  // 64:ff9b:1::/48 (local-use NAT64, RFC 8215) carries it in the last 32 bits too
  if (words[0] === 0x64 && words[1] === 0xff9b && words[2] === 1) return v4(words[6], words[7])
  // 2002:AABB:CCDD::/48 (6to4)
  if (words[0] === 0x2002) return v4(words[1], words[2])
  return null
}

/** the eight 16-bit words of an IPv6 address (its text as isIP accepts it); null when it is not one */
function ipv6Words(address: string): number[] | null {
  if (isIP(address) !== 6) return null
  let text = address.toLowerCase()
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null]
  const part = (s: string) => (s ? s.split(':').map((w) => parseInt(w, 16)) : [])
  const first = part(head)
  const last = tail === null ? [] : part(tail)
  const fill = tail === null ? [] : new Array<number>(8 - first.length - last.length).fill(0)
  const words = [...first, ...fill, ...last]
  return words.length === 8 ? words : null
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

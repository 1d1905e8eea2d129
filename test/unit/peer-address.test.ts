// The addresses a fetching host may connect to for a peer's image, and the lookup that applies them
// to what a name resolves to when the connection is made.
import t from 'tap'
import { PeerAddressError, peerAddressRefusal, peerLookup } from '../../src/peers/peer-address.js'

t.test('peerAddressRefusal: loopback (unless allowed), link-local, unspecified, multicast, broadcast', async (t) => {
  const refused: [string, string][] = [
    ['127.0.0.1', 'a loopback address'],
    ['127.255.0.3', 'a loopback address'],
    ['::1', 'a loopback address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:7f00:1', 'a loopback address'],
    ['169.254.169.254', 'a link-local address'],
    ['::ffff:169.254.169.254', 'a link-local address'],
    ['fe80::1', 'a link-local address'],
    ['febf::1', 'a link-local address'],
    ['0.0.0.0', 'an unspecified address'],
    ['0.1.2.3', 'an unspecified address'],
    ['::', 'an unspecified address'],
    ['224.0.0.251', 'a multicast address'],
    ['239.255.255.250', 'a multicast address'],
    ['ff02::1', 'a multicast address'],
    ['255.255.255.255', 'a broadcast address'],
    ['100.100.100.200', 'a cloud metadata address'],
    ['fd00:ec2::254', 'a cloud metadata address'],
    // IPv6 addresses that carry an IPv4 one reach it where the host routes them
    ['::127.0.0.1', 'a loopback address inside ::127.0.0.1 (127.0.0.1)'],
    ['::7f00:1', 'a loopback address inside ::7f00:1 (127.0.0.1)'],
    ['::ffff:0:7f00:1', 'a loopback address inside ::ffff:0:7f00:1 (127.0.0.1)'],
    ['64:ff9b::7f00:1', 'a loopback address inside 64:ff9b::7f00:1 (127.0.0.1)'],
    ['64:ff9b::a9fe:a9fe', 'a link-local address inside 64:ff9b::a9fe:a9fe (169.254.169.254)'],
    ['64:ff9b:1::a9fe:a9fe', 'a link-local address inside 64:ff9b:1::a9fe:a9fe (169.254.169.254)'],
    ['2002:7f00:1::1', 'a loopback address inside 2002:7f00:1::1 (127.0.0.1)'],
    ['2002:a9fe:a9fe::1', 'a link-local address inside 2002:a9fe:a9fe::1 (169.254.169.254)'],
    ['gpu-2.example', 'not an IP address'],
  ]
  for (const [address, why] of refused) t.equal(peerAddressRefusal(address, false), why, address)
  const fleet = ['10.0.3.7', '192.168.1.20', '172.16.0.9', '100.64.0.1', '2001:db8::7', 'fd00::3', 'fec0::1']
  // NAT64 and 6to4 forms of a fleet address stay fleet addresses
  for (const address of [...fleet, '64:ff9b::a00:307', '2002:a00:307::1', '::ffff:10.0.3.7'])
    t.equal(peerAddressRefusal(address, false), null, `${address}: a fleet address`)
  for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1'])
    t.equal(peerAddressRefusal(address, true), null, `${address} with allowLoopback`)
  t.equal(peerAddressRefusal('169.254.169.254', true), 'a link-local address', 'allowLoopback allows loopback only')
})

const resolve = (lookup: ReturnType<typeof peerLookup>, name: string, all: boolean) =>
  new Promise<{ err: Error | null; address: unknown }>((done) =>
    lookup(name, { all }, (err, address) => done({ err, address })),
  )

t.test('peerLookup: a name that resolves to loopback is refused, in both forms a connection asks for', async (t) => {
  for (const all of [false, true]) {
    const { err } = await resolve(peerLookup(false), 'localhost', all)
    t.type(err, PeerAddressError, `all: ${all}`)
    t.match(err?.message, /^localhost resolves to (127\.0\.0\.1|::1), a loopback address: peers are fetched only/)
  }
  const one = await resolve(peerLookup(true), 'localhost', false)
  t.equal(one.err, null)
  t.match(one.address, /^(127\.0\.0\.1|::1)$/, 'allowLoopback: one address')
  const every = await resolve(peerLookup(true), 'localhost', true)
  t.ok(Array.isArray(every.address) && every.address.length > 0, 'allowLoopback, all: the list')
  const missing = await resolve(peerLookup(false), 'no-such-peer.invalid', false)
  t.match(missing.err, { code: 'ENOTFOUND' }, "the resolver's own error when a name does not resolve")
})

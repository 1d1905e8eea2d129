// What a host serving peers tells the coordinator: its listener's URL (set, or derived from a
// listen address that names one address), its maxUploads; validated on the way in, and a hello
// without it stays valid.
import t from 'tap'
import { agentConfigSchema, coordinatorConfigSchema, parseConfig, ConfigError } from '../../src/config.js'
import { advertisedPeerUrl, peerServingFact } from '../../src/peers/advertise.js'
import { parseAgentMessage } from '../../src/protocol.js'

const peers = (over: Record<string, unknown>) => parseConfig(agentConfigSchema, { peers: over }).peers

t.test('the advertised URL: set, else derived from one listen address, never from a wildcard', async (t) => {
  t.equal(peers({}).advertiseUrl, null, 'off by default')
  t.equal(advertisedPeerUrl(peers({ listen: '10.0.3.7:9479' })), 'http://10.0.3.7:9479')
  t.equal(advertisedPeerUrl(peers({ listen: '[fd00::7]:9479' })), 'http://[fd00::7]:9479')
  t.equal(advertisedPeerUrl(peers({ listen: 'gpu-7.rack-a:9479' })), 'http://gpu-7.rack-a:9479')
  t.equal(advertisedPeerUrl(peers({})), null, 'the default 0.0.0.0 says nothing about a reachable address')
  t.equal(advertisedPeerUrl(peers({ listen: '[::]:9479' })), null)
  t.equal(
    advertisedPeerUrl(peers({ listen: '0.0.0.0:9479', advertiseUrl: 'http://10.0.3.7:9479/' })),
    'http://10.0.3.7:9479',
    'advertiseUrl wins, without a trailing slash',
  )
  t.throws(() => peers({ advertiseUrl: 'ftp://x:1' }), ConfigError, 'only http(s)')
  t.throws(() => peers({ advertiseUrl: 'http://x:1/elsewhere' }), ConfigError, 'a base URL, no path')
})

t.test('the hello fact: only when serving, able to export and with a URL', async (t) => {
  const on = peers({ serve: true, listen: '10.0.3.7:9479', maxUploads: 3 })
  t.same(peerServingFact(on, true), { url: 'http://10.0.3.7:9479', maxUploads: 3 })
  t.equal(peerServingFact(on, false), null, 'a host that cannot serve (no export, no link token) only fetches')
  t.equal(peerServingFact({ ...on, serve: false }, true), null)
  t.equal(peerServingFact(peers({ serve: true }), true), null, 'a wildcard listen without advertiseUrl')
})

t.test('hello frames: peers optional, validated when present', async (t) => {
  const base = { v: 1, id: 'm-1', ts: '2026-11-23T10:00:00.000Z', hostId: 'gpu-1', type: 'hello', version: '0.1.0' }
  const parse = (facts: unknown) => parseAgentMessage(JSON.stringify({ ...base, facts }), 64 * 1024)
  t.ok(parse({ gpu: {} }).ok, 'a hello without peers (an agent that does not serve, or an older one)')
  const ok = parse({ gpu: {}, peers: { url: 'http://10.0.3.7:9479', maxUploads: 2 } })
  t.ok(ok.ok && ok.message.type === 'hello' && ok.message.facts.peers?.maxUploads === 2)
  for (const bad of [
    { url: 'not a url', maxUploads: 2 },
    { url: 'file:///etc/passwd', maxUploads: 2 },
    { url: 'http://x:1', maxUploads: 0 },
    { url: 'http://x:1' },
    { url: 'http://x:1', maxUploads: 2, extra: true },
    { url: 'http://x:1/admin?x=1', maxUploads: 2 },
    { url: 'http://user:pw@x:1', maxUploads: 2 },
  ]) {
    const r = parse({ peers: bad })
    t.ok(!r.ok && r.error.code === 'bad_message' && /facts\.peers/.test(r.error.message), JSON.stringify(bad))
  }
})

t.test("the coordinator's rollout defaults", async (t) => {
  const c = parseConfig(coordinatorConfigSchema, {})
  t.same(c.rollouts, { registryParallel: 1, peerAffinityLabel: null })
  t.equal(
    parseConfig(coordinatorConfigSchema, { rollouts: { peerAffinityLabel: 'rack' } }).rollouts.peerAffinityLabel,
    'rack',
  )
  t.throws(() => parseConfig(coordinatorConfigSchema, { rollouts: { peerAffinityLabel: 'no spaces' } }), ConfigError)
  t.throws(() => parseConfig(coordinatorConfigSchema, { rollouts: { registryParallel: 0 } }), ConfigError)
})

t.test('with peers.tls the derived URL is https, and a set one must be too', async (t) => {
  const tls = { certFile: '/etc/gpuhost/peer.pem', keyFile: '/etc/gpuhost/peer.key' }
  t.equal(advertisedPeerUrl(peers({ listen: '10.0.3.7:9479', tls })), 'https://10.0.3.7:9479')
  t.equal(advertisedPeerUrl(peers({ advertiseUrl: 'https://gpu-7.fleet:9479', tls })), 'https://gpu-7.fleet:9479')
  t.throws(() => peers({ advertiseUrl: 'http://gpu-7.fleet:9479', tls }), /peers\.advertiseUrl.*https:\/\//s)
  t.throws(() => peers({ advertiseUrl: 'https://gpu-7.fleet:9479' }), /peers\.advertiseUrl.*https:\/\//s)
  t.equal(
    advertisedPeerUrl(peers({ listen: '10.0.3.7:9479', tls: { caFile: '/etc/gpuhost/ca.pem' } })),
    'http://10.0.3.7:9479',
    'a CA alone is for fetching',
  )
})

import t from 'tap'
import { peerRounds, planPeerSources, type PeerSourceInput } from '../../src/coordinator/peer-sources.js'

const host = (hostId: string, rack = 'a', serves = true) => ({ hostId, labels: { rack }, serves })
const source = (hostId: string, serving = 0, rack = 'a', maxUploads = 2) => ({
  hostId,
  labels: { rack },
  maxUploads,
  serving,
})
const base: PeerSourceInput = {
  starting: [],
  sources: [],
  registryHosts: [],
  upcomingSources: [],
  registryParallel: 1,
  affinityLabel: null,
}

t.test('the first host reads the registry; the others wait for it rather than read it again', async (t) => {
  const plan = planPeerSources({ ...base, starting: [host('h1'), host('h2'), host('h3')] })
  t.same(plan, [
    { hostId: 'h1', via: 'registry' },
    { hostId: 'h2', via: 'wait' },
    { hostId: 'h3', via: 'wait' },
  ])
})

t.test('a source serves at most maxUploads at once; the rest wait; fallbacks follow the chosen one', async (t) => {
  const plan = planPeerSources({
    ...base,
    starting: [host('h3'), host('h4'), host('h5'), host('h6'), host('h7')],
    sources: [source('h1'), source('h2', 1)],
    registryHosts: [{ labels: {} }],
  })
  t.same(plan, [
    { hostId: 'h3', via: 'peers', peers: ['h1', 'h2'] },
    // equally busy (1 of 2): by name
    { hostId: 'h4', via: 'peers', peers: ['h1', 'h2'] },
    { hostId: 'h5', via: 'peers', peers: ['h2', 'h1'] },
    { hostId: 'h6', via: 'wait' },
    { hostId: 'h7', via: 'wait' },
  ])
})

t.test('no host serves peers: every host reads the registry, as without peers', async (t) => {
  const plan = planPeerSources({ ...base, starting: [host('h1', 'a', false), host('h2', 'a', false)] })
  t.same(
    plan.map((p) => p.via),
    ['registry', 'registry'],
  )
})

t.test('with an affinity label: a rack first reads the registry once, then peers of its own rack', async (t) => {
  const plan = planPeerSources({
    ...base,
    affinityLabel: 'rack',
    starting: [host('b1', 'b'), host('a3', 'a'), host('b2', 'b')],
    sources: [source('a1', 0, 'a'), source('a2', 0, 'a')],
    registryHosts: [{ labels: { rack: 'a' } }],
  })
  t.same(plan, [
    { hostId: 'b1', via: 'registry' },
    { hostId: 'a3', via: 'peers', peers: ['a1', 'a2'] },
    // rack b had its registry turn: a free peer in another rack beats waiting
    { hostId: 'b2', via: 'peers', peers: ['a2', 'a1'] },
  ])
  const later = planPeerSources({
    ...base,
    affinityLabel: 'rack',
    starting: [host('b2', 'b')],
    sources: [source('a1', 0, 'a'), source('b1', 0, 'b')],
    registryHosts: [{ labels: { rack: 'a' } }, { labels: { rack: 'b' } }],
  })
  t.same(later, [{ hostId: 'b2', via: 'peers', peers: ['b1', 'a1'] }], 'its own rack first, another as fallback')
})

t.test("a free source serves its own rack's host before one of another rack that comes first", async (t) => {
  const plan = planPeerSources({
    ...base,
    affinityLabel: 'rack',
    starting: [host('a2', 'a'), host('b2', 'b')],
    sources: [source('b1', 0, 'b', 1)],
    registryHosts: [{ labels: { rack: 'a' } }, { labels: { rack: 'b' } }],
    upcomingSources: [{ labels: { rack: 'a' } }],
  })
  t.same(plan, [
    { hostId: 'a2', via: 'wait' },
    { hostId: 'b2', via: 'peers', peers: ['b1'] },
  ])
})

t.test('rounds grow by 1 + maxUploads', async (t) => {
  t.equal(peerRounds(4, 1, 2), 3, '1, 3, 4')
  t.equal(peerRounds(1000, 1, 2), 8, 'ceil(log3 1000) + 1')
  t.equal(peerRounds(1, 1, 2), 1)
})

t.test('a grant the coordinator signs opens the image on the serving host only', async (t) => {
  const { grantPeer } = await import('../../src/coordinator/peer-grants.js')
  const { hostToken } = await import('../../src/coordinator/identity.js')
  const { verifyPeerToken } = await import('../../src/peers/token.js')
  const policy = { mode: 'per-host' as const, secret: 's3cret', sharedToken: null }
  const digest = 'sha256:' + 'a'.repeat(64)
  const g = grantPeer(
    policy,
    { server: 'h1', fetcher: 'h2', ref: 'reg/x:1', configDigest: digest, peerUrl: 'http://10.0.0.1:9479/' },
    1000,
    3600,
  )
  t.equal(g.url, `http://10.0.0.1:9479/v1/images/${digest}/export`)
  t.match(verifyPeerToken(g.token, { hostId: 'h1', token: hostToken('s3cret', 'h1') }, 1000), { ok: true })
  t.match(verifyPeerToken(g.token, { hostId: 'h3', token: hostToken('s3cret', 'h3') }, 1000), { ok: false })
  t.throws(() =>
    grantPeer(
      { ...policy, secret: null },
      { ...g, server: 'h1', fetcher: 'h2', ref: 'r', configDigest: digest, peerUrl: 'x' },
      0,
      3600,
    ),
  )
})

t.test(
  'a source full only with the host itself: another source or the registry first, else itself again',
  async (t) => {
    const claimed = new Map([['h3', new Map([['h1', 1]])]])
    const full = { ...base, starting: [host('h3')], claimed, registryHosts: [{ labels: {} }] }
    t.same(
      planPeerSources({ ...full, sources: [source('h1', 1, 'a', 1), source('h2', 0, 'a', 1)] }),
      [{ hostId: 'h3', via: 'peers', peers: ['h2', 'h1'] }],
      'another source',
    )
    t.same(
      planPeerSources({ ...full, sources: [source('h1', 1, 'a', 1)], registryHosts: [] }),
      [{ hostId: 'h3', via: 'registry' }],
      'the registry turn',
    )
    t.same(
      planPeerSources({ ...full, sources: [source('h1', 1, 'a', 1)] }),
      [{ hostId: 'h3', via: 'peers', peers: ['h1'] }],
      'never waits for itself',
    )
    t.same(
      planPeerSources({ ...full, sources: [source('h1', 1, 'a', 1)], claimed: new Map() }),
      [{ hostId: 'h3', via: 'wait' }],
      'waits for a slot another host holds',
    )
  },
)

t.test('a grant lasts as long as the prewarm command that carries it can run', async (t) => {
  const { grantPeer, grantTtlSeconds } = await import('../../src/coordinator/peer-grants.js')
  const { hostToken } = await import('../../src/coordinator/identity.js')
  const { verifyPeerToken } = await import('../../src/peers/token.js')
  const policy = { mode: 'per-host' as const, secret: 's3cret', sharedToken: null }
  const commandTimeoutSeconds = 6 * 3600
  const request = {
    server: 'h1',
    fetcher: 'h2',
    ref: 'reg/x:1',
    configDigest: 'sha256:' + 'a'.repeat(64),
    peerUrl: 'x',
  }
  const g = grantPeer(policy, request, 1000, grantTtlSeconds(commandTimeoutSeconds))
  const check = { hostId: 'h1', token: hostToken('s3cret', 'h1') }
  t.match(verifyPeerToken(g.token, check, 1000 + commandTimeoutSeconds), { ok: true }, 'valid to the command timeout')
  t.match(verifyPeerToken(g.token, check, 1000 + commandTimeoutSeconds + 3600), { ok: false, reason: 'expired' })
})

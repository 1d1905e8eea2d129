import t from 'tap'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { peerToken, verifyPeerToken } from '../../src/peers/token.js'
import { ByteBudget } from '../../src/peers/throttle.js'

const SERVER = { hostId: 'gpu-a', token: 'v1.Z3B1LWE.link-token-of-a' }
const claim = { server: 'gpu-a', fetcher: 'gpu-b', ref: 'reg.example/team/model:1', expiresAt: 1_000 }

t.test('a token the coordinator signed with the serving host link token opens that image there', async (t) => {
  const verdict = verifyPeerToken(peerToken(SERVER.token, claim), SERVER, 999)
  t.same(verdict, { ok: true, claim })
})

t.test('refused: expired, another host, another key, altered claim, not a peer token, no own token', async (t) => {
  const token = peerToken(SERVER.token, claim)
  t.match(verifyPeerToken(token, SERVER, 1_000), { ok: false, reason: 'expired' })
  t.match(verifyPeerToken(peerToken(SERVER.token, { ...claim, server: 'gpu-c' }), SERVER, 0), {
    ok: false,
    reason: 'issued for host gpu-c',
  })
  t.match(verifyPeerToken(peerToken('v1.other-host-token', claim), SERVER, 0), { ok: false, reason: 'bad signature' })
  // the fetcher rewrites the claim to another image: the signature no longer matches
  const [v, , mac] = token.split('.')
  const forged = Buffer.from(JSON.stringify({ ...claim, ref: 'reg.example/secret:1' })).toString('base64url')
  t.match(verifyPeerToken(`${v}.${forged}.${mac}`, SERVER, 0), { ok: false, reason: 'bad signature' })
  t.match(verifyPeerToken(SERVER.token, SERVER, 0), { ok: false, reason: 'not a peer token' })
  t.match(verifyPeerToken(token, { hostId: 'gpu-a', token: null }, 0), { ok: false, reason: /no link token/ })
  t.throws(() => peerToken('', claim), /no token/)
})

t.test('the upload budget holds bytes back once a second of them has gone', async (t) => {
  let now = 0
  const budget = new ByteBudget(1000, () => now)
  t.equal(budget.take(600), 0, 'within the first second of burst')
  t.equal(budget.take(600), 200, '200 bytes over: 0.2 s to wait')
  now = 1200
  t.equal(budget.take(1000), 0, 'refilled, never beyond one second')
  const out = await buffer(
    Readable.from([Buffer.alloc(10, 1), Buffer.alloc(10, 2)]).pipe(new ByteBudget(1e6).throttle()),
  )
  t.equal(out.length, 20, 'the throttle passes every byte on')
})

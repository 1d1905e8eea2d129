import t from 'tap'
import { hostToken, verifyAgentCredential, verifyHostToken } from '../../src/coordinator/identity.js'

t.test('a per-host token speaks for its host only, under its secret only', async (t) => {
  const token = hostToken('s3cret', 'node-1')
  t.match(token, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
  t.equal(verifyHostToken(token, 's3cret'), 'node-1')
  t.equal(verifyHostToken(token, 'other'), null, 'another secret (a rotated one) refuses it')
  const [v, , mac] = token.split('.')
  t.equal(
    verifyHostToken(`${v}.${Buffer.from('node-2').toString('base64url')}.${mac}`, 's3cret'),
    null,
    'the host id is bound',
  )
  t.equal(
    verifyHostToken(`${v}.${Buffer.from('node-1').toString('base64url')}.${mac.slice(0, -2)}`, 's3cret'),
    null,
    'a cut mac',
  )
  t.equal(verifyHostToken('v2.x.y', 's3cret'), null)
  t.equal(verifyHostToken(token, null), null, 'no secret, no host')
})

t.test('the shared token only in shared mode; per-host tokens in both', async (t) => {
  const perHost = { mode: 'per-host' as const, secret: 'k', sharedToken: 'shared-1' }
  const shared = { ...perHost, mode: 'shared' as const }
  t.same(verifyAgentCredential('Bearer shared-1', perHost), { ok: false, reason: 'wrong token' })
  t.same(verifyAgentCredential('Bearer shared-1', shared), { ok: true, hostId: null })
  t.same(verifyAgentCredential(`Bearer ${hostToken('k', 'n')}`, shared), { ok: true, hostId: 'n' })
  t.same(verifyAgentCredential(undefined, shared), { ok: false, reason: 'missing bearer token' })
})

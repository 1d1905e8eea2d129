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

t.test('only the canonical base64url spelling of a token is accepted', async (t) => {
  // Tokens as `gpuhost coordinator token` makes them (the same function); host ids of every length mod 3.
  for (const hostId of ['node-1', 'gpu-07', 'gpu-node-a', 'h']) {
    const token = hostToken('s3cret', hostId)
    const [v, name, mac] = token.split('.')
    t.equal(verifyHostToken(token, 's3cret'), hostId, `${hostId}: the token as made`)
    const spellings: [string, string][] = [
      [`${token}=`, 'one pad character'],
      [`${token}==`, 'two pad characters'],
      [`${v}.${name}==.${mac}`, 'a padded host id'],
      [`${v}.${name}.${Buffer.from(mac, 'base64url').toString('base64')}`, 'the mac in plain base64'],
      [`${v}.${name}.${mac}A`, 'a character too many'],
      [`${v}.${name}.${mac.slice(0, -1)}${strayBits(mac.at(-1)!)}`, 'stray bits in the last character'],
      [`${v}..${mac}`, 'an empty host id'],
      [`${v}.${name}.`, 'an empty mac'],
    ]
    for (const [spelling, what] of spellings) {
      if (spelling === token) continue
      t.equal(verifyHostToken(spelling, 's3cret'), null, `${hostId}: ${what}`)
      t.match(verifyAgentCredential(`Bearer ${spelling}`, { mode: 'per-host', secret: 's3cret', sharedToken: null }), {
        ok: false,
      })
    }
  }
})

/** the base64url character that decodes to the same bits as `c` but for the two unused low bits */
function strayBits(c: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  return alphabet[alphabet.indexOf(c) ^ 1]
}

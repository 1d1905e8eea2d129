// Peer credentials: the coordinator lets host F read image R from host S until time T by signing
// {S, F, R, T} with S's own link credential (the token S presents to the coordinator). S checks the
// signature with the token it already holds, so no new secret is spread over the fleet, and a
// credential taken from F's traffic opens one image on one host for minutes, nothing else.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'

const VERSION = 'p1'

const claimSchema = z.strictObject({
  /** the serving host's id */
  server: z.string().min(1),
  /** the fetching host's id: for the serving host's log */
  fetcher: z.string().min(1),
  /** the image reference the fetcher wants, as the rollout names it */
  ref: z.string().min(1),
  /** unix seconds */
  expiresAt: z.number().int(),
})

export type PeerClaim = z.infer<typeof claimSchema>

function mac(serverToken: string, payload: string): Buffer {
  return createHmac('sha256', serverToken).update(`gpuhost-peer:${payload}`).digest()
}

/** signs `claim` with the serving host's link token */
export function peerToken(serverToken: string, claim: PeerClaim): string {
  if (!serverToken) throw new Error('the serving host has no token to sign with')
  const payload = Buffer.from(JSON.stringify(claimSchema.parse(claim)), 'utf8').toString('base64url')
  return `${VERSION}.${payload}.${mac(serverToken, payload).toString('base64url')}`
}

export type PeerVerdict = { ok: true; claim: PeerClaim } | { ok: false; reason: string }

/** checks a peer token as host `hostId` holding link token `ownToken`; every comparison is constant-time */
export function verifyPeerToken(
  token: string,
  own: { hostId: string; token: string | null },
  nowSeconds: number,
): PeerVerdict {
  if (!own.token) return { ok: false, reason: 'this host has no link token to check peer tokens with' }
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== VERSION) return { ok: false, reason: 'not a peer token' }
  const given = Buffer.from(parts[2], 'base64url')
  const expected = mac(own.token, parts[1])
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad signature' }
  let claim: PeerClaim
  try {
    claim = claimSchema.parse(JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')))
  } catch {
    return { ok: false, reason: 'unreadable claim' }
  }
  if (claim.server !== own.hostId) return { ok: false, reason: `issued for host ${claim.server}` }
  if (claim.expiresAt <= nowSeconds) return { ok: false, reason: 'expired' }
  return { ok: true, claim }
}

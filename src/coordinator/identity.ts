// Per-host agent credentials: a token is the host id with an HMAC-SHA256 of it under the
// coordinator's agent secret, so the coordinator verifies which host a token belongs to without
// storing anything per host. Rotating the secret invalidates every host's token at once.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

const TOKEN_VERSION = 'v1'

function mac(secret: string, hostId: string): Buffer {
  return createHmac('sha256', secret).update(`gpuhost-agent:${hostId}`).digest()
}

/** The token for `hostId`: v1.<hostId base64url>.<hmac base64url>. */
export function hostToken(secret: string, hostId: string): string {
  if (!hostId) throw new Error('a host id is required')
  const name = Buffer.from(hostId, 'utf8').toString('base64url')
  return `${TOKEN_VERSION}.${name}.${mac(secret, hostId).toString('base64url')}`
}

/** Who a credential speaks for: one host, or (the shared token) any host. */
export type AgentIdentity = { ok: true; hostId: string | null } | { ok: false; reason: string }

export interface AgentAuthPolicy {
  mode: 'per-host' | 'shared'
  /** the agent secret; null when none could be read (every per-host token is refused) */
  secret: string | null
  /** the shared agent token, honoured only in `shared` mode */
  sharedToken: string | null
}

/** Checks `Authorization: Bearer …` against the policy; every comparison is constant-time. */
export function verifyAgentCredential(header: string | undefined, policy: AgentAuthPolicy): AgentIdentity {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  if (!match) return { ok: false, reason: 'missing bearer token' }
  const token = match[1]
  const perHost = verifyHostToken(token, policy.secret)
  if (perHost) return { ok: true, hostId: perHost }
  if (policy.mode === 'shared' && policy.sharedToken !== null && sameSecret(token, policy.sharedToken)) {
    return { ok: true, hostId: null }
  }
  return { ok: false, reason: 'wrong token' }
}

/** The host a per-host token belongs to, or null when it is not a valid token under `secret`. */
export function verifyHostToken(token: string, secret: string | null): string | null {
  if (secret === null) return null
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== TOKEN_VERSION) return null
  const name = canonicalBase64url(parts[1])
  const given = canonicalBase64url(parts[2])
  if (!name || !given) return null
  const hostId = name.toString('utf8')
  if (!hostId || Buffer.from(hostId, 'utf8').toString('base64url') !== parts[1]) return null
  const expected = mac(secret, hostId)
  return given.length === expected.length && timingSafeEqual(given, expected) ? hostId : null
}

/**
 * The bytes `text` encodes, only when it is exactly how base64url writes them: no padding, no
 * characters of the other alphabet, no stray bits in the last character. Node's decoder is lenient
 * about all three, which would let many spellings of one token pass.
 */
function canonicalBase64url(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url')
  return bytes.length > 0 && bytes.toString('base64url') === text ? bytes : null
}

function sameSecret(a: string, b: string): boolean {
  // Hash both sides so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

// The coordinator's side of peer credentials: it signs a grant with the serving host's own link
// token, which it can derive (a per-host token: from the agent secret) or holds (the shared token).
import { hostToken, type AgentAuthPolicy } from './identity.js'
import type { PeerGrantKey } from './peer-advert.js'
import { peerToken } from '../peers/token.js'

/**
 * Beyond the command's own life: the clocks of coordinator and hosts may differ by this much, and a
 * command is failed for its timeout only at the next expiry sweep.
 */
export const GRANT_MARGIN_SECONDS = 600

/**
 * How long a grant lasts: as long as the prewarm command that carries it can still run. A command
 * is sent again as it is stored (on every reconnect of its host) until it fails for having no result
 * within commandTimeoutSeconds of its creation, when the grant was signed; so a grant outlives it.
 */
export function grantTtlSeconds(commandTimeoutSeconds: number): number {
  return commandTimeoutSeconds + GRANT_MARGIN_SECONDS
}

export interface PeerGrant {
  host: string
  url: string
  token: string
}

/** who may read what from whom: the part of a grant the rollout driver decides */
export interface PeerGrantRequest {
  server: string
  fetcher: string
  ref: string
  configDigest: string
  peerUrl: string
  /** the credential the serving host connected with, so checks grants with; absent: by the auth mode */
  serverKey?: PeerGrantKey
}

/**
 * What a prewarm command names for `fetcher` to read `ref` (image `configDigest`) from `server`,
 * whose peer listener is `peerUrl` (http://HOST:PORT); valid `ttlSeconds` from `nowSeconds`.
 */
export function grantPeer(
  policy: AgentAuthPolicy,
  g: PeerGrantRequest,
  nowSeconds: number,
  ttlSeconds: number,
): PeerGrant {
  const key = signingKey(policy, g)
  if (!key) throw new Error(`no credential of host ${g.server} to sign a peer grant with`)
  const token = peerToken(key, { server: g.server, fetcher: g.fetcher, ref: g.ref, expiresAt: nowSeconds + ttlSeconds })
  return { host: g.server, url: `${g.peerUrl.replace(/\/$/, '')}/v1/images/${g.configDigest}/export`, token }
}

/**
 * The serving host checks a grant with the token it connected with. In shared mode a host may still
 * connect with its own per-host token (both are accepted), so the mode alone does not say which.
 */
function signingKey(policy: AgentAuthPolicy, g: PeerGrantRequest): string | null {
  const own = () => (policy.secret ? hostToken(policy.secret, g.server) : null)
  const shared = () => (policy.mode === 'shared' ? policy.sharedToken : null)
  if (g.serverKey === 'host') return own()
  if (g.serverKey === 'shared') return shared()
  return policy.mode === 'per-host' ? own() : shared()
}

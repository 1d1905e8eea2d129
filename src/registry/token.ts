// The bearer-token flow's second half: asking the token server a registry's challenge names for
// a pull token, with the credentials for that registry. Its answer is read with a cap and only a
// token a header can carry is kept.
import type { RegistryCredential } from './credentials.js'
import { parseJsonObject, readAnswer } from './answers.js'
import { RegistryError, transportReason } from './errors.js'
import { fetchVia } from './fetch-via.js'
import { MAX_TOKEN_ANSWER_BYTES } from './limits.js'

export interface Token {
  value: string
  expires: number
}

/** a pull token from the endpoint a challenge named (docker/distribution's token authentication specification) */
export async function fetchToken(
  domain: string,
  challenge: { realm: string; service: string | undefined; scope: string },
  cred: RegistryCredential | null,
  timeoutMs: number,
): Promise<Token> {
  const { realm, service, scope } = challenge
  const url = new URL(realm)
  let res: Response
  try {
    if (cred?.identityToken) {
      // An OAuth refresh token is exchanged with a POST, as dockerd does.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: cred.identityToken,
        client_id: 'gpuhost',
        scope,
      })
      if (service) form.set('service', service)
      res = await fetchVia(url, { method: 'POST', body: form, signal: AbortSignal.timeout(timeoutMs) })
    } else {
      if (service) url.searchParams.set('service', service)
      url.searchParams.set('scope', scope)
      const headers: Record<string, string> = {}
      if (cred?.username)
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`
      res = await fetchVia(url, { headers, signal: AbortSignal.timeout(timeoutMs) })
    }
  } catch (err) {
    throw new RegistryError('unreachable', domain, `token endpoint ${url.origin} unreachable: ${transportReason(err)}`)
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel()
    throw new RegistryError(
      'unauthorized',
      domain,
      `${domain}: the token endpoint refused the credentials (${res.status})`,
    )
  }
  if (!res.ok) {
    await res.body?.cancel()
    throw new RegistryError('unreachable', domain, `${domain}: the token endpoint answered ${res.status}`)
  }
  const bytes = await readAnswer(
    res,
    MAX_TOKEN_ANSWER_BYTES,
    `token server ${url.host} (for registry ${domain})`,
    domain,
    'a token answer',
  )
  const body = parseJsonObject(bytes) as { token?: unknown; access_token?: unknown; expires_in?: unknown }
  const value = body.token ?? body.access_token
  // what goes into the Authorization header: RFC 6750's token characters, nothing a header cannot carry
  if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value))
    throw new RegistryError('invalid', domain, `${domain}: the token endpoint sent no token`)
  // 60 s is the specification's default lifetime; renew a little early.
  const lifetime = typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) ? body.expires_in : 60
  return { value, expires: Date.now() + Math.max(10, lifetime - 10) * 1000 }
}

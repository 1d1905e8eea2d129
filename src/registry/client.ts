// Reads an image's manifest and config from its registry without pulling it, speaking the
// registry HTTP API v2 the way dockerd does: HTTPS, the bearer-token flow on a 401 (credentials
// from a Docker config.json when the registry has some), plain HTTP only for registries dockerd
// treats as insecure, configured mirrors first and then the registry itself.
import { createHash } from 'node:crypto'
import { parse as parseAuthHeader } from 'auth-header'
import { tlsFetch } from '../tls-fetch.js'
import { CredentialStore, normalizeRegistryKey } from './credentials.js'
import { RegistryError, isTransportError, transportReason } from './errors.js'
import { DOCKERD_DEFAULT_TRUST, isInsecureRegistry, type RegistryTrust } from './insecure.js'
import { hostPlatform, pickPlatform, formatPlatform, type IndexEntry, type Platform } from './platform.js'
import { apiHost, parseImageRef, type ImageRef } from './reference.js'
import type { RemoteImage, RemoteImageSource } from './types.js'

const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]
const ACCEPT = [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ')

export interface RegistryClientOptions {
  /** per registry domain, mirrors tried in order before the registry itself */
  mirrors?: Record<string, string[]>
  credentials?: CredentialStore
  /** dockerd's RegistryConfig (from `docker info`); dockerd's defaults when absent */
  trust?: () => Promise<RegistryTrust>
  platform?: Platform
  timeoutMs?: number
}

interface Endpoint {
  base: string
  /** TLS without verification, for registries dockerd would also reach with InsecureSkipVerify */
  insecureTls?: boolean
}
interface Manifest {
  mediaType: string
  digest: string
  body: Record<string, unknown>
}
interface Token {
  value: string
  expires: number
}

export class RegistryClient implements RemoteImageSource {
  private readonly tokens = new Map<string, Token>()
  private readonly endpoints = new Map<string, Endpoint>()
  private readonly credentials: CredentialStore
  private readonly platform: Platform
  private readonly timeoutMs: number
  private readonly mirrors = new Map<string, string[]>()

  constructor(private readonly opts: RegistryClientOptions = {}) {
    // Keys and mirrors as people write them (index.docker.io, https://mirror.internal/) name the same hosts.
    for (const [registry, mirrors] of Object.entries(opts.mirrors ?? {})) {
      this.mirrors.set(normalizeRegistryKey(registry), mirrors.map(normalizeRegistryKey))
    }
    this.credentials = opts.credentials ?? new CredentialStore(null)
    this.platform = opts.platform ?? hostPlatform()
    this.timeoutMs = opts.timeoutMs ?? 30_000
  }

  /** the registries to try for `domain`, in order: its mirrors, then itself */
  sourcesFor(domain: string): string[] {
    return [...(this.mirrors.get(domain) ?? []), domain]
  }

  async inspectRemote(ref: string): Promise<RemoteImage> {
    const parsed = parseImageRef(ref)
    const failures: string[] = []
    const sources = this.sourcesFor(parsed.domain)
    for (const [i, source] of sources.entries()) {
      try {
        return await this.inspectOn(source, parsed)
      } catch (err) {
        if (!(err instanceof RegistryError) || i === sources.length - 1) {
          if (err instanceof RegistryError && failures.length) err.message += ` (also tried ${failures.join('; ')})`
          throw err
        }
        // A mirror's "not found" says nothing the registry's own answer will not; other failures are worth keeping.
        failures.push(`mirror ${source}: ${err.kind === 'not_found' ? 'not found' : err.message}`)
      }
    }
    throw new Error('unreachable: no registry to try')
  }

  private async inspectOn(domain: string, ref: ImageRef): Promise<RemoteImage> {
    const top = await this.manifest(domain, ref.repository, ref.digest ?? ref.tag!)
    let manifest = top
    if (INDEX_TYPES.includes(top.mediaType)) {
      const entry = pickPlatform((top.body.manifests as IndexEntry[] | undefined) ?? [], this.platform)
      if (!entry)
        throw new RegistryError(
          'unsupported',
          domain,
          `${ref.original} has no image for ${formatPlatform(this.platform)}`,
        )
      manifest = await this.manifest(domain, ref.repository, entry.digest)
    }
    if (!MANIFEST_TYPES.includes(manifest.mediaType)) {
      throw new RegistryError(
        'unsupported',
        domain,
        `${ref.original}: unsupported manifest type ${manifest.mediaType || '(none)'}`,
      )
    }
    const layers = ((manifest.body.layers as { digest: string; size: number }[] | undefined) ?? []).map((l) => ({
      digest: l.digest,
      sizeBytes: Number(l.size) || 0,
    }))
    const configDigest = (manifest.body.config as { digest?: string } | undefined)?.digest
    if (!configDigest) throw new RegistryError('invalid', domain, `${ref.original}: the manifest names no config blob`)
    const config = await this.blobJson(domain, ref.repository, configDigest)
    const inner = (config.config ?? {}) as { Env?: string[] | null; Labels?: Record<string, string> | null }
    return {
      ref: ref.original,
      registry: domain,
      repository: ref.repository,
      digest: manifest.digest,
      ...(manifest !== top ? { indexDigest: top.digest } : {}),
      configDigest,
      env: inner.Env ?? [],
      labels: inner.Labels ?? {},
      compressedBytes: layers.reduce((sum, l) => sum + l.sizeBytes, 0),
      layers,
    }
  }

  private async manifest(domain: string, repository: string, reference: string): Promise<Manifest> {
    const res = await this.request(domain, repository, `/v2/${repository}/manifests/${reference}`, { accept: ACCEPT })
    const bytes = Buffer.from(await res.arrayBuffer())
    const digest =
      res.headers.get('docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    let body: Record<string, unknown>
    try {
      body = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new RegistryError('invalid', domain, `${repository}:${reference}: the manifest is not JSON`)
    }
    const mediaType = String(body.mediaType ?? res.headers.get('content-type')?.split(';')[0] ?? '')
    return { mediaType, digest, body }
  }

  private async blobJson(domain: string, repository: string, digest: string): Promise<Record<string, unknown>> {
    const res = await this.request(domain, repository, `/v2/${repository}/blobs/${digest}`, {})
    try {
      return (await res.json()) as Record<string, unknown>
    } catch {
      throw new RegistryError('invalid', domain, `${repository}: config blob ${digest} is not JSON`)
    }
  }

  /** a GET with auth: on a 401 it follows the challenge (Bearer token or Basic) once */
  private async request(
    domain: string,
    repository: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<Response> {
    const scopeKey = `${domain}/${repository}`
    const send = async (authorization?: string) =>
      this.send(domain, path, { ...headers, ...(authorization ? { authorization } : {}) })
    const cached = this.tokens.get(scopeKey)
    let res = await send(cached && cached.expires > Date.now() ? `Bearer ${cached.value}` : undefined)
    if (res.status === 401) {
      const challenge = res.headers.get('www-authenticate')
      await res.body?.cancel()
      const authorization = await this.answerChallenge(domain, repository, challenge)
      if (authorization) res = await send(authorization)
    }
    if (res.ok) return res
    const detail = await registryErrorText(res)
    await res.body?.cancel().catch(() => undefined)
    const what = `${domain}/${repository}`
    if (res.status === 404) throw new RegistryError('not_found', domain, `${what}: not found (${detail})`)
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(
        'unauthorized',
        domain,
        `${what}: access denied (${detail}); ` +
          'the repository may not exist, or it needs credentials in prewarm.credentialsFile',
      )
    }
    throw new RegistryError(
      res.status >= 500 ? 'unreachable' : 'invalid',
      domain,
      `${what}: the registry answered ${res.status} (${detail})`,
    )
  }

  private async answerChallenge(domain: string, repository: string, header: string | null): Promise<string | null> {
    if (!header) return null
    let challenge
    try {
      challenge = parseAuthHeader(header)
    } catch {
      throw new RegistryError('invalid', domain, `unreadable WWW-Authenticate challenge from ${domain}`)
    }
    const cred = this.credentials.get(domain)
    if (challenge.scheme.toLowerCase() === 'basic') {
      return cred?.username
        ? `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`
        : null
    }
    if (challenge.scheme.toLowerCase() !== 'bearer') return null
    const param = (k: string) => {
      const v = challenge.params[k]
      return Array.isArray(v) ? v[0] : v
    }
    const realm = param('realm')
    if (!realm) throw new RegistryError('invalid', domain, `${domain} asked for a bearer token but named no realm`)
    const token = await this.fetchToken(domain, realm, param('service'), `repository:${repository}:pull`)
    this.tokens.set(`${domain}/${repository}`, token)
    return `Bearer ${token.value}`
  }

  /** the token endpoint, as in docker/distribution's token authentication specification */
  private async fetchToken(domain: string, realm: string, service: string | undefined, scope: string): Promise<Token> {
    const cred = this.credentials.get(domain)
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
        res = await fetchVia(url, { method: 'POST', body: form, signal: AbortSignal.timeout(this.timeoutMs) })
      } else {
        if (service) url.searchParams.set('service', service)
        url.searchParams.set('scope', scope)
        const headers: Record<string, string> = {}
        if (cred?.username)
          headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`
        res = await fetchVia(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) })
      }
    } catch (err) {
      throw new RegistryError(
        'unreachable',
        domain,
        `token endpoint ${url.origin} unreachable: ${transportReason(err)}`,
      )
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
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string; expires_in?: number }
    const value = body.token ?? body.access_token
    if (!value) throw new RegistryError('invalid', domain, `${domain}: the token endpoint sent no token`)
    // 60 s is the specification's default lifetime; renew a little early.
    return { value, expires: Date.now() + Math.max(10, (body.expires_in ?? 60) - 10) * 1000 }
  }

  /** one GET on the endpoint that worked before, else HTTPS and then (insecure registries only) HTTP */
  private async send(domain: string, path: string, headers: Record<string, string>): Promise<Response> {
    const known = this.endpoints.get(domain)
    const candidates = known ? [known] : await this.candidateEndpoints(domain)
    let lastError: unknown = null
    for (const endpoint of candidates) {
      try {
        const res = await fetchVia(
          endpoint.base + path,
          { headers, signal: AbortSignal.timeout(this.timeoutMs) },
          endpoint.insecureTls,
        )
        this.endpoints.set(domain, endpoint)
        return res
      } catch (err) {
        if (!isTransportError(err)) throw err
        lastError = err
      }
    }
    this.endpoints.delete(domain)
    throw new RegistryError('unreachable', domain, `registry ${domain} unreachable: ${transportReason(lastError)}`)
  }

  private async candidateEndpoints(domain: string): Promise<Endpoint[]> {
    const host = apiHost(domain)
    const trust = this.opts.trust ? await this.opts.trust().catch(() => DOCKERD_DEFAULT_TRUST) : DOCKERD_DEFAULT_TRUST
    if (!(await isInsecureRegistry(domain, trust))) return [{ base: `https://${host}` }]
    return [{ base: `https://${host}`, insecureTls: true }, { base: `http://${host}` }]
  }

  async close(): Promise<void> {
    // nothing held: requests go through Node's global agents
  }
}

type FetchInit = {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: URLSearchParams
  signal: AbortSignal
}

/** a request through Node's own fetch, or over TLS left unchecked (an insecure registry) */
async function fetchVia(url: string | URL, init: FetchInit, insecureTls = false): Promise<Response> {
  if (!insecureTls) return fetch(url, init)
  // Redirects are followed as fetch follows them (registries send blob reads to their storage). Only
  // the registry's own origin is reached with its TLS unchecked: another one is fetched with TLS
  // checked and without the registry's credentials.
  let target = new URL(url)
  const origin = target.origin
  for (let hops = 0; ; hops++) {
    const res = await tlsFetch(target, { ...init, rejectUnauthorized: false })
    const location = REDIRECTS.has(res.status) ? res.headers.get('location') : null
    if (location === null || init.method === 'POST') return res
    await res.body?.cancel()
    if (hops >= MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${origin}`)
    target = new URL(location, target)
    if (target.origin !== origin) {
      const { authorization: _dropped, ...headers } = init.headers ?? {}
      return fetch(target, { ...init, headers })
    }
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
/** as fetch's own limit */
const MAX_REDIRECTS = 20

async function registryErrorText(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { errors?: { code?: string; message?: string }[] }
    const first = body.errors?.[0]
    if (first) return [first.code, first.message].filter(Boolean).join(': ')
  } catch {
    /* not a registry error body */
  }
  return `HTTP ${res.status}`
}

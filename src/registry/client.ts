// Reads an image's manifest and config from its registry without pulling it, speaking the
// registry HTTP API v2 the way dockerd does: HTTPS, the bearer-token flow on a 401 (credentials
// from a Docker config.json when the registry has some), plain HTTP only for registries dockerd
// treats as insecure, configured mirrors first and then the registry itself. Nothing a registry
// sends is taken on trust: each body is read with a cap (./limits.ts), and each manifest and
// config is kept only when its bytes hash to the digest it was asked by (./digest.ts).
import { parse as parseAuthHeader } from 'auth-header'
import { mismatch, readAnswer, registryErrorText } from './answers.js'
import { CredentialStore, normalizeRegistryKey } from './credentials.js'
import { digestOf, hashesTo, isDigest } from './digest.js'
import { RegistryError, isTransportError, transportReason } from './errors.js'
import { fetchVia } from './fetch-via.js'
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES } from './limits.js'
import { fetchToken, type Token } from './token.js'
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
  /** computed from the bytes received, never taken from the registry's word */
  digest: string
  body: Record<string, unknown>
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
      if (!isDigest(entry.digest))
        throw new RegistryError('invalid', domain, `${ref.original}: the index names no valid digest for its image`)
      // fetched by digest, so it is checked against the digest the index names
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
    const configDigest = (manifest.body.config as { digest?: unknown } | undefined)?.digest
    if (configDigest === undefined)
      throw new RegistryError('invalid', domain, `${ref.original}: the manifest names no config blob`)
    if (!isDigest(configDigest))
      throw new RegistryError('invalid', domain, `${ref.original}: the manifest names its config by no valid digest`)
    const config = await this.config(domain, ref.repository, configDigest)
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

  /** a manifest or index by tag or digest, checked against the digest asked for or announced */
  private async manifest(domain: string, repository: string, reference: string): Promise<Manifest> {
    const byDigest = isDigest(reference)
    const what = `the manifest of ${repository}${byDigest ? '@' : ':'}${reference}`
    const res = await this.request(domain, repository, `/v2/${repository}/manifests/${reference}`, { accept: ACCEPT })
    const bytes = await readAnswer(res, MAX_MANIFEST_BYTES, `registry ${domain}`, domain, what)
    let digest = digestOf(bytes)
    if (byDigest) {
      if (!hashesTo(bytes, reference)) throw mismatch(domain, what, digest, reference)
      digest = reference
    } else {
      // By tag the digest is computed from the bytes, so the header cannot choose it; a header that
      // names another digest is refused as well, not ignored: that registry serves one thing and
      // says another, and dockerd's pull that follows would meet the same registry. This refuses
      // all that trusting a correct header would refuse, and more.
      const announced = res.headers.get('docker-content-digest')
      if (announced !== null && !hashesTo(bytes, announced.trim()))
        throw mismatch(domain, what, digest, announced.trim(), 'its Docker-Content-Digest header')
    }
    let body: Record<string, unknown>
    try {
      body = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new RegistryError('invalid', domain, `${repository}:${reference}: the manifest is not JSON`)
    }
    const mediaType = String(body.mediaType ?? res.headers.get('content-type')?.split(';')[0] ?? '')
    return { mediaType, digest, body }
  }

  /** the image config blob, kept only when it hashes to the digest the manifest names */
  private async config(domain: string, repository: string, digest: string): Promise<Record<string, unknown>> {
    const what = `the config blob ${digest} of ${repository}`
    const res = await this.request(domain, repository, `/v2/${repository}/blobs/${digest}`, {})
    const bytes = await readAnswer(res, MAX_CONFIG_BYTES, `registry ${domain}`, domain, what)
    if (!hashesTo(bytes, digest)) throw mismatch(domain, what, digestOf(bytes), digest)
    let body: unknown
    try {
      body = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new RegistryError('invalid', domain, `${repository}: config blob ${digest} is not JSON`)
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new RegistryError('invalid', domain, `${repository}: config blob ${digest} is not a JSON object`)
    return body as Record<string, unknown>
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
    const token = await fetchToken(
      domain,
      { realm, service: param('service'), scope: `repository:${repository}:pull` },
      this.credentials.get(domain),
      this.timeoutMs,
    )
    this.tokens.set(`${domain}/${repository}`, token)
    return `Bearer ${token.value}`
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

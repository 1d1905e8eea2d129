// Image references read the way Docker reads them (distribution/reference's familiar form):
// docker.io is the default registry, a one-part name on it gets "library/", a first part with a
// dot or a colon or "localhost" names a registry, a tag or digest may follow.
import { parseFamiliarName } from '@swimlane/docker-reference'

export interface ImageRef {
  /** the reference as written */
  original: string
  /** registry domain as Docker names it in references: docker.io, nvcr.io, 127.0.0.1:5000 */
  domain: string
  /** repository path on that registry, e.g. library/ubuntu */
  repository: string
  /** null when pinned by digest only */
  tag: string | null
  digest: string | null
}

export class InvalidReferenceError extends Error {
  constructor(
    readonly ref: string,
    why: string,
  ) {
    super(`invalid image reference "${ref}": ${why}`)
    this.name = 'InvalidReferenceError'
  }
}

export function parseImageRef(ref: string): ImageRef {
  let parsed
  try {
    parsed = parseFamiliarName(ref.trim())
  } catch (err) {
    throw new InvalidReferenceError(ref, (err as Error).message)
  }
  const digest = parsed.digest ?? null
  // Docker pulls ":latest" when neither tag nor digest is given.
  const tag = parsed.tag ?? (digest ? null : 'latest')
  return { original: ref, domain: parsed.domain ?? 'docker.io', repository: parsed.repository ?? '', tag, digest }
}

/** the host the registry API answers on: Docker Hub's API is not at docker.io itself */
export function apiHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain
}

/** the name Docker shows for a repository: "ubuntu" for docker.io/library/ubuntu, "127.0.0.1:5000/a/b" */
export function familiarName(domain: string, repository: string): string {
  if (domain !== 'docker.io') return `${domain}/${repository}`
  return repository.startsWith('library/') ? repository.slice('library/'.length) : repository
}

/** repo:tag, repo@digest or repo:tag@digest, in Docker's familiar spelling */
export function formatRef(ref: Pick<ImageRef, 'domain' | 'repository' | 'tag' | 'digest'>): string {
  const tag = ref.tag ? `:${ref.tag}` : ''
  const digest = ref.digest ? `@${ref.digest}` : ''
  return `${familiarName(ref.domain, ref.repository)}${tag}${digest}`
}

/** the same image on another registry (a mirror): same repository path, tag and digest */
export function onRegistry(ref: ImageRef, domain: string): ImageRef {
  return { ...ref, domain, original: formatRef({ ...ref, domain }) }
}

/** domain, repository, tag and digest as written (no tag added); null when it is not a reference */
function parseAsWritten(ref: string): Pick<ImageRef, 'domain' | 'repository' | 'tag' | 'digest'> | null {
  try {
    const parsed = parseFamiliarName(ref.trim())
    const domain = parsed.domain ?? 'docker.io'
    return { domain, repository: parsed.repository ?? '', tag: parsed.tag ?? null, digest: parsed.digest ?? null }
  } catch {
    return null
  }
}

const IMAGE_ID = /^(sha256:)?[0-9a-f]{64}$/

/**
 * The one spelling to compare references by, as Docker lists them: "ubuntu:latest" for
 * docker.io/library/ubuntu, ":latest" when neither tag nor digest is given, an image id as
 * "sha256:…". What is not a reference at all comes back trimmed, so it matches only itself.
 */
export function familiarRef(ref: string): string {
  const trimmed = ref.trim()
  if (IMAGE_ID.test(trimmed)) return trimmed.startsWith('sha256:') ? trimmed : `sha256:${trimmed}`
  const parsed = parseAsWritten(trimmed)
  if (!parsed) return trimmed
  return formatRef({ ...parsed, tag: parsed.tag ?? (parsed.digest ? null : 'latest') })
}

/**
 * The fully qualified spelling, "docker.io/library/ubuntu:22.04" for "ubuntu:22.04", with no tag
 * added (a repository stays a repository), so a pattern may be written either way. What is not a
 * reference comes back as it is.
 */
export function qualifiedRef(ref: string): string {
  const known = qualified.get(ref)
  if (known !== undefined) return known
  const parsed = parseAsWritten(ref)
  const { domain, repository, tag, digest } = parsed ?? {}
  const result = parsed ? `${domain}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}` : ref
  if (qualified.size >= QUALIFIED_CACHE_SIZE) qualified.clear()
  qualified.set(ref, result)
  return result
}

/**
 * A host's references change slowly and every prune plan, dry run and wanted-set check qualifies all
 * of them; parsing one against the reference grammar is the planner's dearest step. Bounded: cleared
 * when full, so a host with ever new references costs one re-parse per reference, never unbounded memory.
 */
const QUALIFIED_CACHE_SIZE = 50_000
const qualified = new Map<string, string>()

/** "repo@sha256:…" entries of an image's RepoDigests, read back into domain/repository/digest */
export function parseRepoDigest(entry: string): { domain: string; repository: string; digest: string } | null {
  try {
    const r = parseImageRef(entry)
    return r.digest ? { domain: r.domain, repository: r.repository, digest: r.digest } : null
  } catch {
    return null
  }
}

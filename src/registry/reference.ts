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
  constructor(readonly ref: string, why: string) {
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
  return `${familiarName(ref.domain, ref.repository)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** the same image on another registry (a mirror): same repository path, tag and digest */
export function onRegistry(ref: ImageRef, domain: string): ImageRef {
  return { ...ref, domain, original: formatRef({ ...ref, domain }) }
}

/** "repo@sha256:…" entries of an image's RepoDigests, read back into domain/repository/digest */
export function parseRepoDigest(entry: string): { domain: string; repository: string; digest: string } | null {
  try {
    const r = parseImageRef(entry)
    return r.digest ? { domain: r.domain, repository: r.repository, digest: r.digest } : null
  } catch {
    return null
  }
}

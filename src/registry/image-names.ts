// Image names, one definition of each: how an image is named (its tags, or its digests), a
// reference's repository and docker.io form, whether an image carries a wanted reference or one a
// pull in flight is writing, and the times the agent stamps on images. The prune planner, the
// prewarm's wanted set, the runtimes and the Kubernetes labels all match images by these.
import type { ImageFacts } from '../core/snapshot.js'
import { qualifiedRef } from './reference.js'

/** How a plan names an image: its tags, or its digests when it has no tag (pulled by digest). */
export function refsOf(image: Pick<ImageFacts, 'repoTags' | 'repoDigests'>): string[] {
  const tags = image.repoTags.filter((t) => t !== '<none>:<none>')
  return tags.length > 0 ? tags : image.repoDigests.filter((d) => !d.startsWith('<none>@'))
}

/** repository of a repo:tag or repo@digest: strips the digest or the tag (a ':' after the last '/'). */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@')
  if (at >= 0) return ref.slice(0, at)
  const colon = ref.lastIndexOf(':')
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref
}

/** What matching reads of a reference, worked out once per reference and kept across plans. */
export interface RefInfo {
  /** as written and in its docker.io form, each also as its repository: the names a glob is matched against */
  forms: readonly string[]
  /** its docker.io form (qualifiedRef) */
  qualified: string
  /** repositoryOf the reference as written */
  repository: string
}

/**
 * A host's references change slowly and every plan asks again, so what the planner reads of each is
 * kept (bounded: cleared when full, so ever new references cost a re-parse each, never unbounded memory).
 */
export function refInfo(ref: string): RefInfo {
  let info = infoByRef.get(ref)
  if (info === undefined) {
    const q = qualifiedRef(ref)
    const repository = repositoryOf(ref)
    const forms = ref.startsWith('<none>') ? [] : [...new Set([ref, repository, q, repositoryOf(q)])]
    info = { forms, qualified: q, repository }
    if (infoByRef.size >= FORMS_CACHE_SIZE) infoByRef.clear()
    infoByRef.set(ref, info)
  }
  return info
}
export const FORMS_CACHE_SIZE = 50_000
const infoByRef = new Map<string, RefInfo>()

/** a time in ms, or `fallback` when absent or unreadable: always what Date.parse reads */
export function timeOf(iso: string | null | undefined, fallback: number): number {
  if (!iso) return fallback
  const t = isoUtcMs(iso) ?? Date.parse(iso)
  return Number.isNaN(t) ? fallback : t
}

/**
 * The times the agent writes (toISOString: YYYY-MM-DDTHH:MM:SS.sssZ) read without Date.parse,
 * which costs several times more and is called three times per image per plan; anything else,
 * or a field out of range, is left to Date.parse (null), so the result is always Date.parse's.
 */
function isoUtcMs(s: string): number | null {
  if (s.length !== 24 || s.charCodeAt(23) !== 90 /* Z */) return null
  const year = digits(s, 0, 4)
  const month = digits(s, 5, 2)
  const day = digits(s, 8, 2)
  const hour = digits(s, 11, 2)
  const minute = digits(s, 14, 2)
  const second = digits(s, 17, 2)
  const ms = digits(s, 20, 3)
  const separators = s[4] === '-' && s[7] === '-' && s[10] === 'T' && s[13] === ':' && s[16] === ':' && s[19] === '.'
  // Date.UTC reads years 0-99 as 1900-1999; Date.parse does not
  if (!separators || year < 100 || month < 1 || month > 12 || day < 1 || day > 31) return null
  if (hour > 23 || minute > 59 || second > 59 || ms < 0) return null
  return Date.UTC(year, month - 1, day, hour, minute, second, ms)
}

/** the decimal number in s[at, at+n), or -1 when a character there is not a digit */
function digits(s: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v
}

/** the references pulls in flight are writing, each also in its docker.io form */
export function pullSet(refs: Iterable<string>): Set<string> {
  const set = new Set<string>()
  for (const r of refs) {
    set.add(r)
    set.add(qualifiedRef(r))
  }
  return set
}

/** true when one of an image's names (id, tags, digests) is being written by a pull */
export function isBeingPulled(names: string[], inFlight: Set<string>): boolean {
  return names.some((n) => inFlight.has(n) || inFlight.has(qualifiedRef(n)))
}

/** the wanted references in every form an image may carry them: docker.io-qualified, and repo@digest */
export function wantedSet(refs: Iterable<string>): Set<string> {
  const set = new Set<string>()
  for (const ref of refs) {
    const q = qualifiedRef(ref)
    set.add(q)
    const at = q.indexOf('@')
    // repo:tag@digest: the image lists it as repo:tag and as repo@digest
    if (at >= 0) {
      set.add(repositoryOf(q.slice(0, at)) + q.slice(at))
      if (q.slice(0, at) !== repositoryOf(q.slice(0, at))) set.add(q.slice(0, at))
    }
  }
  return set
}

/** true when one of an image's tags or digests is wanted */
export function isWanted(image: Pick<ImageFacts, 'repoTags' | 'repoDigests'>, wanted: Set<string>): boolean {
  if (wanted.size === 0) return false
  return [...image.repoTags, ...image.repoDigests].some((r) => !r.startsWith('<none>') && wanted.has(qualifiedRef(r)))
}

/**
 * isBeingPulled over an image's id, tags and digests, each reference's docker.io form read from
 * refInfo. An id read as a reference qualifies to docker.io/library/sha256:…, so unless a pull names
 * such a thing (`idForms`), only the id itself is looked up.
 */
export function imageBeingPulled(image: ImageFacts, inFlight: Set<string>, idForms: boolean): boolean {
  if (inFlight.has(image.id)) return true
  if ((idForms || !image.id.startsWith('sha256:')) && inFlight.has(qualifiedRef(image.id))) return true
  for (const ref of image.repoTags) if (inFlight.has(ref) || inFlight.has(refInfo(ref).qualified)) return true
  for (const ref of image.repoDigests) if (inFlight.has(ref) || inFlight.has(refInfo(ref).qualified)) return true
  return false
}

/** isWanted, each reference's docker.io form read from refInfo */
export function imageWanted(image: ImageFacts, wanted: Set<string>): boolean {
  for (const ref of image.repoTags) if (!ref.startsWith('<none>') && wanted.has(refInfo(ref).qualified)) return true
  for (const ref of image.repoDigests) if (!ref.startsWith('<none>') && wanted.has(refInfo(ref).qualified)) return true
  return false
}

// The planner's orders: the newest images of each repository (kept by keepPerRepository) and the
// eviction order of the rest: dangling first, then least recently used; never used counts as the
// oldest use; ties by firstSeen, then id, so the order is total and repeatable.
import type { ImageFacts } from '../core/snapshot.js'
import { refInfo, refsOf, timeOf } from '../registry/image-names.js'

/** An image with its times parsed once: sorting 10,000 images must not parse dates a million times. */
export interface Keyed {
  image: ImageFacts
  refs: string[]
  dangling: boolean
  /** ms; -Infinity when never used */
  lastUsed: number
  /** ms; Infinity when unreadable (sorts last, and counts as young) */
  firstSeen: number
  /** ms; -Infinity when absent or unreadable */
  created: number
}

export function keyed(image: ImageFacts): Keyed {
  const refs = refsOf(image)
  return {
    image,
    refs,
    dangling: refs.length === 0,
    lastUsed: timeOf(image.lastUsed, -Infinity),
    firstSeen: timeOf(image.firstSeen, Infinity),
    created: timeOf(image.createdAt, -Infinity),
  }
}

/** ids of the images that are among the newest `n` of one of their repositories, with that repository */
export function newestPerRepository(images: Keyed[], n: number): Map<string, string> {
  const kept = new Map<string, string>()
  if (n <= 0) return kept
  // Only the newest n of each repository are wanted: each repository keeps a short list, newest
  // first, instead of sorting every image of it.
  const newest = new Map<string, Keyed[]>()
  for (const k of images) {
    let last: string | null = null
    for (const ref of k.refs) {
      const repo = refInfo(ref).repository
      // refs of one image usually share a repository (tag and digest): once is enough
      if (repo === last) continue
      last = repo
      let list = newest.get(repo)
      if (list === undefined) newest.set(repo, (list = []))
      // most images are older than a full list's last: one comparison turns them away
      if (list.length >= n && newerFirst(k, list[list.length - 1]) >= 0) continue
      if (list.includes(k)) continue
      let at = list.length
      while (at > 0 && newerFirst(k, list[at - 1]) < 0) at--
      if (at < n) {
        list.splice(at, 0, k)
        if (list.length > n) list.pop()
      }
    }
  }
  for (const [repo, list] of newest) for (const k of list) if (!kept.has(k.image.id)) kept.set(k.image.id, repo)
  return kept
}

/** newest first: by created, then first seen (unreadable first-seen counts as oldest here), then id */
function newerFirst(a: Keyed, b: Keyed): number {
  return (
    diff(b.created, a.created) || diff(seenForNewest(b), seenForNewest(a)) || compareStrings(a.image.id, b.image.id)
  )
}

function seenForNewest(k: Keyed): number {
  return Number.isFinite(k.firstSeen) ? k.firstSeen : -Infinity
}

/** a - b for times that may be infinite (Infinity - Infinity is NaN, which would break a sort) */
function diff(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** dangling first, then least recently used (never used first), then first seen, then id */
export function compareForEviction(a: Keyed, b: Keyed): number {
  return (
    diff(a.dangling ? 0 : 1, b.dangling ? 0 : 1) ||
    diff(a.lastUsed, b.lastUsed) ||
    diff(a.firstSeen, b.firstSeen) ||
    compareStrings(a.image.id, b.image.id)
  )
}

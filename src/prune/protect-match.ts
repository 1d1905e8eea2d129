// Glob matching for the planner: which protect glob an image matches (on repo:tag, repo,
// repo@digest or image id), and the include/exclude scope. Pure, with per-glob-list caches.
import picomatch from 'picomatch'
import type { ImageFacts } from '../core/snapshot.js'
import { FORMS_CACHE_SIZE, refInfo } from '../registry/image-names.js'

export type ProtectMatcher = (image: Pick<ImageFacts, 'id' | 'repoTags' | 'repoDigests'>) => string | null

/**
 * A matcher that names the protect glob an image matches, or null. Most images match no glob, and
 * the planner asks for each of thousands on every plan: one combined expression (and the globs as
 * literals, which picomatch also accepts as they are) says whether any glob matches a name, and that
 * answer is kept per name, as the matcher is per list of globs, so a later plan over the same images
 * tests no expression. Only on a hit are the globs tried one by one, in order, to name the first.
 */
export function protectMatcher(globs: string[]): ProtectMatcher {
  if (globs.length === 0) return () => null
  const key = globs.join('\n')
  let matcher = matchers.get(key)
  if (matcher === undefined) {
    matcher = compileProtectMatcher(globs)
    if (matchers.size >= MATCHERS_KEPT) matchers.clear()
    matchers.set(key, matcher)
  }
  return matcher
}
/** a host has a few glob lists (protect, include, exclude, a schedule's own): a handful is enough */
const MATCHERS_KEPT = 16
const matchers = new Map<string, ProtectMatcher>()

function compileProtectMatcher(globs: string[]): ProtectMatcher {
  // bash: a single * crosses '/', so "*:stable" protects nvidia/cuda:stable too.
  const options = { bash: true, dot: true }
  const compiled = globs.map((glob) => ({ glob, match: picomatch(glob, options), idPrefix: idPrefixOf(glob) }))
  const regexes = globs.map((glob) => picomatch.makeRe(glob, options))
  const combined = regexes.every((r) => r.flags === '')
    ? new RegExp(regexes.map((r) => `(?:${r.source})`).join('|'))
    : null
  const literals = new Set(globs)
  const anyGlob = (name: string) => literals.has(name) || combined === null || combined.test(name)
  /** per id, and per reference with all its forms: whether any glob matches it; bounded */
  const idHits = new Map<string, boolean>()
  const refHits = new Map<string, boolean>()
  const remember = (hits: Map<string, boolean>, name: string, hit: boolean) => {
    if (hits.size >= FORMS_CACHE_SIZE) hits.clear()
    hits.set(name, hit)
    return hit
  }
  const idHit = (id: string, bareId: string) => idHits.get(id) ?? remember(idHits, id, anyGlob(id) || anyGlob(bareId))
  const refHit = (ref: string) => refHits.get(ref) ?? remember(refHits, ref, refInfo(ref).forms.some(anyGlob))
  const prefixes = compiled.flatMap((c) => (c.idPrefix ? [c.idPrefix] : []))
  return (image) => {
    const bareId = image.id.startsWith('sha256:') ? image.id.slice('sha256:'.length) : image.id
    let hit = idHit(image.id, bareId)
    for (let i = 0; !hit && i < prefixes.length; i++) hit = bareId.startsWith(prefixes[i])
    for (let i = 0; !hit && i < image.repoTags.length; i++) hit = refHit(image.repoTags[i])
    for (let i = 0; !hit && i < image.repoDigests.length; i++) hit = refHit(image.repoDigests[i])
    if (!hit) return null
    const names = namesOf(image)
    for (const { glob, match, idPrefix } of compiled) {
      if (idPrefix && bareId.startsWith(idPrefix)) return glob
      if (names.some((n) => match(n))) return glob
    }
    return null
  }
}

/** a glob that is a plain image id or id prefix (12+ hex digits, sha256: optional) */
function idPrefixOf(glob: string): string | null {
  const m = /^(?:sha256:)?([0-9a-f]{12,64})$/.exec(glob)
  return m ? m[1] : null
}

function namesOf(image: Pick<ImageFacts, 'id' | 'repoTags' | 'repoDigests'>): string[] {
  const names = new Set<string>([image.id, image.id.replace(/^sha256:/, '')])
  for (const ref of [...image.repoTags, ...image.repoDigests]) for (const form of refInfo(ref).forms) names.add(form)
  return [...names]
}

/** true when the image is in the scope the include and exclude globs draw (no include: every image) */
export function scopeMatcher(include: string[], exclude: string[]): (image: ImageFacts) => boolean {
  const inc = include.length > 0 ? protectMatcher(include) : null
  const exc = exclude.length > 0 ? protectMatcher(exclude) : null
  return (image) => (inc === null || inc(image) !== null) && (exc === null || exc(image) === null)
}

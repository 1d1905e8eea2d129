// The wanted set: the images this host should hold. It is the configured prewarm.images plus the
// images a coordinator rollout asked the host to hold; prune keeps every image of the set ("wanted
// by prewarm") so that what prewarm pulled is not the first thing removed at the next threshold.
// The held part is durable (stateDir/prewarm-wanted.json, written atomically): a restart must
// not release what a rollout asked for. A damaged file is moved aside and said so, as the usage
// record is: the configured images stay wanted either way.
import { join } from 'node:path'
import { z } from 'zod'
import type { ImageFacts } from '../core/snapshot.js'
import { isWanted, wantedSet } from '../registry/image-names.js'
import { qualifiedRef } from '../registry/reference.js'
import { writeJsonAtomic } from '../state/atomic.js'
import { loadStateFile } from '../state/state-file.js'

export const WANTED_FILE = 'prewarm-wanted.json'

const heldSchema = z.object({
  ref: z.string().min(1),
  /** who asked: a rollout id, or another name the caller chooses */
  source: z.string().min(1),
  since: z.iso.datetime({ offset: true }),
})

const fileSchema = z.object({ version: z.literal(1), held: z.array(heldSchema) })

export type HeldImage = z.infer<typeof heldSchema>

export interface WantedImage {
  ref: string
  /** "config" for prewarm.images; else the sources that hold it */
  sources: string[]
}

export class WantedSet {
  private held: HeldImage[]
  private readonly path: string

  constructor(
    private readonly opts: {
      stateDir: string
      configured: string[]
      now: () => Date
      onDamaged?: (reason: string, movedTo: string) => void
    },
  ) {
    this.path = join(opts.stateDir, WANTED_FILE)
    this.held = this.load()
  }

  /** every wanted reference, configured first, each once (compared in their docker.io form) */
  refs(): string[] {
    return this.list().map((w) => w.ref)
  }

  list(): WantedImage[] {
    const byRef = new Map<string, WantedImage>()
    for (const ref of this.opts.configured) add(byRef, ref, 'config')
    for (const h of this.held) add(byRef, h.ref, h.source)
    return [...byRef.values()]
  }

  /** the images held for callers (not the configured ones) */
  heldImages(): HeldImage[] {
    return this.held.map((h) => ({ ...h }))
  }

  /** holds `refs` for `source` (durably); holding one again keeps its first time. Returns the refs added. */
  hold(refs: string[], source: string): string[] {
    const added: string[] = []
    const since = this.opts.now().toISOString()
    const next = [...this.held]
    for (const ref of refs) {
      if (next.some((h) => h.source === source && sameRef(h.ref, ref))) continue
      next.push({ ref, source, since })
      added.push(ref)
    }
    if (added.length > 0) this.save(next)
    return added
  }

  /**
   * Releases `ref` (any source when `source` is not given). A configured image stays wanted: it
   * is released by changing the configuration. Returns whether anything was released.
   */
  release(ref: string, source?: string): boolean {
    const next = this.held.filter((h) => !(sameRef(h.ref, ref) && (source === undefined || h.source === source)))
    if (next.length === this.held.length) return false
    this.save(next)
    return true
  }

  /** releases everything `source` holds (a later rollout replaces an earlier one's images) */
  releaseSource(source: string): string[] {
    const gone = this.held.filter((h) => h.source === source).map((h) => h.ref)
    if (gone.length > 0) this.save(this.held.filter((h) => h.source !== source))
    return gone
  }

  private save(next: HeldImage[]): void {
    writeJsonAtomic(this.path, { version: 1, held: next })
    this.held = next
  }

  private load(): HeldImage[] {
    const empty = { version: 1 as const, held: [] }
    const opts = { what: 'a wanted-images file', now: this.opts.now(), onDamaged: this.opts.onDamaged }
    return loadStateFile(this.path, fileSchema, empty, opts).held
  }
}

function add(byRef: Map<string, WantedImage>, ref: string, source: string): void {
  const key = qualifiedRef(ref)
  const entry = byRef.get(key)
  if (!entry) byRef.set(key, { ref, sources: [source] })
  else if (!entry.sources.includes(source)) entry.sources.push(source)
}

function sameRef(a: string, b: string): boolean {
  return a === b || qualifiedRef(a) === qualifiedRef(b)
}

/** Pure: the wanted references no local image carries (by tag, or by digest), in their order. */
export function missingRefs(
  wanted: string[],
  local: readonly Pick<ImageFacts, 'repoTags' | 'repoDigests'>[],
): string[] {
  return wanted.filter((ref) => {
    const forms = wantedSet([ref])
    return !local.some((image) => isWanted(image, forms))
  })
}

// Per-image backoff of the prewarm an agent runs when it starts, kept in stateDir so that it
// outlives the process: an agent in a restart loop (a bad config, a crash) must not start the same
// multi-GB pull on every start. An attempt counts when it begins, so a start killed mid-pull counts
// too; an image that ends up present clears its entry. Delays double from 1 minute up to 1 hour.
import { join } from 'node:path'
import { z } from 'zod'
import { backoffCeiling, type BackoffPolicy } from '../backoff.js'
import { writeJsonAtomic } from '../state/atomic.js'
import { loadStateFile } from '../state/state-file.js'

export const START_BACKOFF_FILE = 'prewarm-backoff.json'
export const START_BACKOFF: BackoffPolicy = { baseMs: 60_000, maxMs: 3600_000 }

const isoTime = z.iso.datetime({ offset: true })
const entrySchema = z.object({ attempts: z.number().int().min(1), lastAttemptAt: isoTime, notBefore: isoTime })
const fileSchema = z.object({ version: z.literal(1), images: z.record(z.string().min(1), entrySchema) })

export type StartBackoffEntry = z.infer<typeof entrySchema>

export class StartBackoff {
  private images: Record<string, StartBackoffEntry>
  private readonly path: string

  constructor(
    private readonly opts: {
      stateDir: string
      now: () => Date
      policy?: BackoffPolicy
      onDamaged?: (reason: string, movedTo: string) => void
      /** runs each write; the agent's state guard gives up its reserve on a full disk */
      write?: (fn: () => void) => void
    },
  ) {
    this.path = join(opts.stateDir, START_BACKOFF_FILE)
    this.images = this.load()
  }

  get(ref: string): StartBackoffEntry | undefined {
    return this.images[ref]
  }

  /** the time before which `ref` is not tried again on start, or null when it may be tried now */
  waitUntil(ref: string): string | null {
    const e = this.images[ref]
    if (!e) return null
    return Date.parse(e.notBefore) > this.opts.now().getTime() ? e.notBefore : null
  }

  /** records that attempts at `refs` begin now (before any byte: a crash mid-pull counts) */
  begin(refs: string[]): void {
    if (refs.length === 0) return
    const now = this.opts.now()
    const next = { ...this.images }
    for (const ref of refs) {
      const attempts = (next[ref]?.attempts ?? 0) + 1
      const delay = backoffCeiling(attempts - 1, this.opts.policy ?? START_BACKOFF)
      next[ref] = {
        attempts,
        lastAttemptAt: now.toISOString(),
        notBefore: new Date(now.getTime() + delay).toISOString(),
      }
    }
    this.save(next)
  }

  /** `refs` are present: their backoff ends */
  clear(refs: string[]): void {
    const gone = refs.filter((r) => r in this.images)
    if (gone.length === 0) return
    const next = { ...this.images }
    for (const ref of gone) delete next[ref]
    this.save(next)
  }

  private save(next: Record<string, StartBackoffEntry>): void {
    const write = this.opts.write ?? ((fn) => fn())
    write(() => writeJsonAtomic(this.path, { version: 1, images: next }))
    this.images = next
  }

  private load(): Record<string, StartBackoffEntry> {
    const empty = { version: 1 as const, images: {} }
    const opts = { what: 'a prewarm backoff file', now: this.opts.now(), onDamaged: this.opts.onDamaged }
    return loadStateFile(this.path, fileSchema, empty, opts).images
  }
}

// A durable record of the removals in flight that take names off an image one by one (an image
// tagged in several repositories cannot go by id without force). Written before the first name
// goes and cleared when the removal ends either way, so a crash in between (SIGKILL, power loss)
// leaves the names to put back on the next start. One small JSON file, written atomically.
import { join } from 'node:path'
import { readJsonFile, writeJsonAtomic } from '../state/atomic.js'
import { systemClock, type Clock } from '../core/clock.js'

export const REMOVAL_JOURNAL = 'removals.json'

export interface JournalEntry {
  /** every name the image had when its removal began */
  tags: string[]
  startedAt: string
  /** what the names pointed at, for a runtime that puts a name back by its target (containerd) */
  target?: { mediaType: string; digest: string; size: number }
}

type Entries = Record<string, JournalEntry>

export class RemovalJournal {
  private readonly path: string

  constructor(
    stateDir: string,
    private readonly now: Clock = systemClock,
  ) {
    this.path = join(stateDir, REMOVAL_JOURNAL)
  }

  /** the removals a crash interrupted, by image id */
  pending(): Entries {
    const read = readJsonFile<{ removals?: Entries }>(this.path, {})
    return read.removals ?? {}
  }

  begin(imageId: string, tags: string[], target?: JournalEntry['target']): void {
    const entry: JournalEntry = { tags, startedAt: this.now().toISOString(), ...(target ? { target } : {}) }
    this.write({ ...this.pending(), [imageId]: entry })
  }

  end(imageId: string): void {
    const entries = this.pending()
    if (!(imageId in entries)) return
    delete entries[imageId]
    this.write(entries)
  }

  private write(entries: Entries): void {
    writeJsonAtomic(this.path, { removals: entries })
  }
}

// When each image was last used by a container and first seen by this agent. Docker records
// neither (moby#4237), so the agent learns them from container events and the container list and
// keeps them in stateDir: a restart must not make every image look brand new or never used.
import { systemClock } from '../core/clock.js'
import { join } from 'node:path'
import type { Logger } from 'pino'
import {
  IMAGE_USAGE_FILE,
  loadImageUsage,
  saveImageUsage,
  type ImageUsageMap,
  type ImageUsageRecord,
} from './usage-file.js'

export type { ImageUsageRecord }

/** the later of two times; null counts as "never" */
export function laterOf(a: string | null, b: string | null): string | null {
  if (a === null) return b
  if (b === null) return a
  return Date.parse(b) > Date.parse(a) ? b : a
}

function earlierOf(a: string, b: string): string {
  return Date.parse(b) < Date.parse(a) ? b : a
}

/**
 * Pure: the records after one look at the host. A new id is first seen at the time the runtime
 * says it was last tagged (pulled, loaded or tagged: `tagTimes`), so an image that was here before
 * the agent started is not taken for a fresh one; else, or when that time is unreadable or later
 * than `now`, at `now`. Ids that no longer exist are forgotten (an id that comes back is a new
 * pull, seen anew); use times only move forward.
 */
export function reconcileUsage(
  records: ImageUsageMap,
  existingIds: Iterable<string>,
  usedAt: Map<string, string>,
  now: string,
  tagTimes: ReadonlyMap<string, string> = new Map(),
): ImageUsageMap {
  const next: ImageUsageMap = {}
  for (const id of existingIds) {
    const known = records[id]
    next[id] = {
      firstSeen: known?.firstSeen ?? firstSeenOf(tagTimes.get(id), now),
      lastUsed: laterOf(known?.lastUsed ?? null, usedAt.get(id) ?? null),
    }
  }
  return next
}

/** the runtime's tag time as an ISO time (ms), when it is readable and not after `now`; else `now` */
function firstSeenOf(tagTime: string | undefined, now: string): string {
  const t = tagTime === undefined ? NaN : Date.parse(tagTime)
  return Number.isNaN(t) || t > Date.parse(now) ? now : new Date(t).toISOString()
}

/** Pure: merges what another process wrote into ours, for the ids we know. */
export function mergeUsage(ours: ImageUsageMap, theirs: ImageUsageMap): ImageUsageMap {
  const merged: ImageUsageMap = {}
  for (const [id, mine] of Object.entries(ours)) {
    const other = theirs[id]
    merged[id] = other
      ? { firstSeen: earlierOf(mine.firstSeen, other.firstSeen), lastUsed: laterOf(mine.lastUsed, other.lastUsed) }
      : mine
  }
  return merged
}

export interface UsageTrackerOptions {
  stateDir: string
  log: Logger
  now?: () => Date
  /** writes are gathered for this long, so a burst of events costs one write */
  writeDelayMs?: number
  /** runs each write of the file; the agent's state guard releases its reserve when the disk is full */
  write?: (fn: () => void) => void
}

export class UsageTracker {
  readonly name = 'usage'
  readonly file: string
  private records: ImageUsageMap = {}
  private loaded = false
  private writeTimer: NodeJS.Timeout | null = null
  private dirty = false
  private readonly now: () => Date
  private readonly log: Logger
  private readonly writeDelayMs: number
  private readonly write: (fn: () => void) => void

  constructor(opts: UsageTrackerOptions) {
    this.file = join(opts.stateDir, IMAGE_USAGE_FILE)
    this.now = opts.now ?? systemClock
    this.log = opts.log
    this.writeDelayMs = opts.writeDelayMs ?? 2000
    this.write = opts.write ?? ((fn) => fn())
  }

  async start(): Promise<void> {
    this.load()
  }

  async stop(): Promise<void> {
    this.flush()
  }

  load(): void {
    if (this.loaded) return
    this.records = loadImageUsage(
      this.file,
      (reason, movedTo) =>
        this.log.error(
          { file: this.file, movedTo, reason },
          'image usage file is damaged: moved aside, last-used times start afresh',
        ),
      this.now(),
    )
    this.loaded = true
  }

  get(id: string): ImageUsageRecord | undefined {
    return this.records[id]
  }

  /** the images that exist now, when containers were seen using them, and when each was last tagged */
  reconcile(existingIds: Iterable<string>, usedAt: Map<string, string>, tagTimes?: ReadonlyMap<string, string>): void {
    this.load()
    const next = reconcileUsage(this.records, existingIds, usedAt, this.now().toISOString(), tagTimes)
    if (!sameRecords(this.records, next)) {
      this.records = next
      this.scheduleWrite()
    }
  }

  /** writes now if anything changed; the agent calls it on stop, one-shot commands before they exit */
  flush(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer)
    this.writeTimer = null
    if (!this.dirty) return
    this.dirty = false
    // Another process (a one-shot `gpuhost prune` beside the agent) may have written since we
    // loaded; keep the earliest first-seen and the latest last-used of both.
    const onDisk = loadImageUsage(
      this.file,
      (reason, movedTo) =>
        this.log.error({ file: this.file, movedTo, reason }, 'image usage file is damaged: moved aside'),
      this.now(),
    )
    this.records = mergeUsage(this.records, onDisk)
    try {
      const records = this.records
      this.write(() => saveImageUsage(this.file, records))
    } catch (err) {
      // The records stay in memory, newer than the file, and are written by a later try.
      this.dirty = true
      this.log.error({ file: this.file, err: (err as Error).message }, 'cannot write the image usage file; will retry')
      this.scheduleWrite()
    }
  }

  private scheduleWrite(): void {
    this.dirty = true
    if (this.writeTimer) return
    this.writeTimer = setTimeout(() => {
      this.writeTimer = null
      this.flush()
    }, this.writeDelayMs)
    this.writeTimer.unref()
  }
}

function sameRecords(a: ImageUsageMap, b: ImageUsageMap): boolean {
  const aKeys = Object.keys(a)
  if (aKeys.length !== Object.keys(b).length) return false
  return aKeys.every((k) => b[k] && a[k].firstSeen === b[k].firstSeen && a[k].lastUsed === b[k].lastUsed)
}

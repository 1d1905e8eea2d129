// The durable outbox: every event and command result is written here before it is sent and
// removed only when the coordinator acks it, so nothing is lost across a dropped link, an agent
// restart or a crash.
//
// Why SQLite (better-sqlite3) and not an append log: we need ordered reads from the oldest
// unacked entry, deletes from the middle (acks arrive in any order, progress events are dropped
// first when the outbox is full) and atomic, crash-safe writes. SQLite in WAL mode with
// synchronous=FULL gives all of that in one file with a transaction per write; an append log
// would need its own compaction, index and torn-write recovery.
//
// A write can fail (SQLITE_FULL on a full disk, an I/O error). The entry is then held in memory,
// still sent in order, and written by flush() once the disk takes it: a full disk delays
// durability, it does not lose entries. Held entries count towards the bound like written ones.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

export type OutboxKind = 'event' | 'command.result'

export interface OutboxEntry {
  seq: number
  id: string
  kind: OutboxKind
  /** the event type, or the command's action for a result */
  type: string
  /** the protocol message, ready to send */
  message: string
}

/**
 * What may be dropped when the outbox is full, first to last: progress, then informational
 * events, then any other event. Command results are never dropped: the outbox grows past its
 * bound rather than lose one.
 */
const DROP_ORDER: ((e: Pick<OutboxEntry, 'kind' | 'type'>) => boolean)[] = [
  (e) => e.kind === 'event' && e.type === 'pull.progress',
  (e) =>
    e.kind === 'event' &&
    [
      'collector.failed',
      'collector.recovered',
      'component.failed',
      'component.started',
      'agent.started',
      'agent.stopping',
      'disk.threshold',
      'compat.changed',
      'prune.image',
      'state.write_failed',
      'state.write_recovered',
    ].includes(e.type),
  (e) => e.kind === 'event',
]

export interface OutboxStats {
  pending: number
  dropped: number
  /** entries kept in memory because the database could not take them */
  held: number
}

export interface OutboxOptions {
  maxEntries: number
  /** told of every entry dropped to keep the bound, with its type */
  onDrop?: (dropped: number, type: string) => void
  /** runs each database write; a caller can make room (release a reserve) and retry inside it */
  write?: <T>(fn: () => T) => T
  /** told when a write failed and the entries stay in memory */
  onWriteError?: (err: Error) => void
}

export class Outbox {
  private readonly db: Database.Database
  private readonly insert: Database.Statement
  private readonly countAll: Database.Statement
  private readonly removeOne: Database.Statement
  private readonly after: Database.Statement
  private readonly victims: Database.Statement
  private readonly removeSeq: Database.Statement
  private readonly hasId: Database.Statement
  /** entries the database did not take yet, in order; their seq is the one they get when written */
  private held: OutboxEntry[] = []
  /** acked ids whose delete failed: not sent again, deleted by the next flush */
  private acked = new Set<string>()
  private nextSeq: number
  private stored: number
  private droppedCount = 0
  private readonly write: <T>(fn: () => T) => T

  constructor(
    readonly file: string,
    private readonly opts: OutboxOptions,
  ) {
    mkdirSync(dirname(file), { recursive: true })
    this.write = opts.write ?? ((fn) => fn())
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.exec(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL,
      type TEXT NOT NULL,
      message TEXT NOT NULL
    )`)
    this.insert = this.db.prepare('INSERT OR IGNORE INTO outbox (seq, id, kind, type, message) VALUES (?, ?, ?, ?, ?)')
    this.countAll = this.db.prepare('SELECT count(*) AS n FROM outbox')
    this.removeOne = this.db.prepare('DELETE FROM outbox WHERE id = ?')
    this.hasId = this.db.prepare('SELECT 1 FROM outbox WHERE id = ?').pluck()
    this.removeSeq = this.db.prepare('DELETE FROM outbox WHERE seq = ?')
    this.after = this.db.prepare('SELECT seq, id, kind, type, message FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?')
    this.victims = this.db.prepare('SELECT seq, id, kind, type FROM outbox ORDER BY seq')
    const last = this.db
      .prepare(
        `SELECT max(coalesce((SELECT max(seq) FROM outbox), 0),
      coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)) AS n`,
      )
      .get() as { n: number }
    this.nextSeq = last.n + 1
    this.stored = this.count()
  }

  /**
   * Writes one entry durably (committed before this returns) and trims the outbox to its bound.
   * When the database cannot take it, the entry is held in memory and written by flush().
   */
  add(entry: Omit<OutboxEntry, 'seq'>): void {
    if (this.held.some((e) => e.id === entry.id)) return
    this.held.push({ ...entry, seq: this.nextSeq++ })
    this.flush()
    if (this.stats().pending > this.opts.maxEntries) this.trim()
  }

  /** Writes held entries and pending deletes; returns whether nothing is left in memory. */
  flush(): boolean {
    if (this.held.length === 0 && this.acked.size === 0) return true
    const held = this.held.slice()
    const acked = [...this.acked]
    try {
      this.write(() =>
        this.db.transaction(() => {
          for (const e of held) this.insert.run(e.seq, e.id, e.kind, e.type, e.message)
          for (const id of acked) this.removeOne.run(id)
        })(),
      )
    } catch (err) {
      this.opts.onWriteError?.(err as Error)
      return false
    }
    // Counted from the table after the commit: a failed commit never leaves phantom entries.
    this.held = this.held.filter((e) => !held.includes(e))
    for (const id of acked) this.acked.delete(id)
    this.stored = this.count()
    return this.held.length === 0 && this.acked.size === 0
  }

  private count(): number {
    return (this.countAll.get() as { n: number }).n
  }

  private trim(): void {
    let excess = this.stats().pending - this.opts.maxEntries
    const stored = (this.victims.all() as Omit<OutboxEntry, 'message'>[]).filter((e) => !this.acked.has(e.id))
    for (const droppable of DROP_ORDER) {
      if (excess <= 0) break
      // Oldest first: written entries are older than held ones.
      const fromTable = stored.filter(droppable).slice(0, excess)
      if (fromTable.length > 0) {
        try {
          this.write(() =>
            this.db.transaction(() => {
              for (const e of fromTable) this.removeSeq.run(e.seq)
            })(),
          )
          this.dropped(fromTable)
          excess -= fromTable.length
          this.stored = this.count()
        } catch (err) {
          this.opts.onWriteError?.(err as Error)
        }
      }
      if (excess <= 0) break
      const fromMemory = this.held.filter(droppable).slice(0, excess)
      this.held = this.held.filter((e) => !fromMemory.includes(e))
      this.dropped(fromMemory)
      excess -= fromMemory.length
    }
    // Only results are left above the bound: they are kept, the outbox stays over its size.
  }

  private dropped(entries: Pick<OutboxEntry, 'type'>[]): void {
    const byType = new Map<string, number>()
    for (const e of entries) byType.set(e.type, (byType.get(e.type) ?? 0) + 1)
    this.droppedCount += entries.length
    for (const [type, n] of byType) this.opts.onDrop?.(n, type)
  }

  /** The oldest entries after `seq`, in the order they were written, held ones included. */
  entriesAfter(seq: number, limit: number): OutboxEntry[] {
    const stored = this.after.all(seq, limit + this.acked.size) as OutboxEntry[]
    const out = stored.filter((e) => !this.acked.has(e.id)).slice(0, limit)
    for (const e of this.held) {
      if (out.length >= limit) break
      if (e.seq > seq) out.push(e)
    }
    return out
  }

  /** Removes acked entries; unknown ids (already removed, or never ours) are ignored. */
  remove(ids: string[]): number {
    let removed = 0
    const wanted = new Set(ids)
    const before = this.held.length
    this.held = this.held.filter((e) => !wanted.has(e.id))
    removed += before - this.held.length
    try {
      this.write(() =>
        this.db.transaction(() => {
          for (const id of wanted) removed += this.removeOne.run(id).changes
        })(),
      )
    } catch (err) {
      // The delete waits for the disk; the entries are not sent again meanwhile.
      for (const id of wanted)
        if (this.hasId.get(id)) {
          this.acked.add(id)
          removed++
        }
      this.opts.onWriteError?.(err as Error)
    }
    this.stored = this.count()
    return removed
  }

  stats(): OutboxStats {
    const pending = Math.max(0, this.stored - this.acked.size) + this.held.length
    return { pending, dropped: this.droppedCount, held: this.held.length }
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

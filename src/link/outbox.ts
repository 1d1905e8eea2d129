// The durable outbox: every event and command result is written here before it is sent and
// removed only when the coordinator acks it, so nothing is lost across a dropped link, an agent
// restart or a crash.
//
// Why SQLite (better-sqlite3) and not an append log: we need ordered reads from the oldest
// unacked entry, deletes from the middle (acks arrive in any order, progress events are dropped
// first when the outbox is full) and atomic, crash-safe writes. SQLite in WAL mode with
// synchronous=FULL gives all of that in one file with a transaction per write; an append log
// would need its own compaction, index and torn-write recovery.
import type { EventType } from '../protocol-events.js'
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

/** What may be dropped when the outbox is full, first to last; results are never dropped. */
const DROP_ORDER: EventType[][] = [
  ['pull.progress'],
  [
    'collector.failed', 'collector.recovered', 'component.failed', 'component.started', 'agent.started', 'agent.stopping',
    'disk.threshold', 'compat.changed', 'prune.image',
  ],
]

export interface OutboxStats {
  pending: number
  dropped: number
}

export class Outbox {
  private readonly db: Database.Database
  private readonly insert: Database.Statement
  private readonly countAll: Database.Statement
  private readonly removeOne: Database.Statement
  private readonly after: Database.Statement
  private pendingCount: number
  private droppedCount = 0

  constructor(readonly file: string, private readonly maxEntries: number, private readonly onDrop: (dropped: number, type: string) => void = () => {}) {
    mkdirSync(dirname(file), { recursive: true })
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
    this.insert = this.db.prepare('INSERT OR IGNORE INTO outbox (id, kind, type, message) VALUES (?, ?, ?, ?)')
    this.countAll = this.db.prepare('SELECT count(*) AS n FROM outbox')
    this.removeOne = this.db.prepare('DELETE FROM outbox WHERE id = ?')
    this.after = this.db.prepare('SELECT seq, id, kind, type, message FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?')
    this.pendingCount = (this.countAll.get() as { n: number }).n
  }

  /** Writes one entry durably (committed before this returns), then trims the outbox to its bound. */
  add(entry: Omit<OutboxEntry, 'seq'>): void {
    this.db.transaction(() => {
      const { changes } = this.insert.run(entry.id, entry.kind, entry.type, entry.message)
      this.pendingCount += changes
      if (this.pendingCount > this.maxEntries) this.trim()
    })()
  }

  private trim(): void {
    for (const types of DROP_ORDER) {
      const excess = this.pendingCount - this.maxEntries
      if (excess <= 0) return
      const marks = types.map(() => '?').join(',')
      const { changes } = this.db.prepare(
        `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = 'event' AND type IN (${marks}) ORDER BY seq LIMIT ?)`,
      ).run(...types, excess)
      if (changes > 0) {
        this.pendingCount -= changes
        this.droppedCount += changes
        this.onDrop(changes, types.join('|'))
      }
    }
    // Only results are left above the bound: they are kept, the outbox stays over its size.
  }

  /** The oldest entries after `seq`, in the order they were written. */
  entriesAfter(seq: number, limit: number): OutboxEntry[] {
    return this.after.all(seq, limit) as OutboxEntry[]
  }

  /** Removes acked entries; unknown ids (already removed, or never ours) are ignored. */
  remove(ids: string[]): number {
    let removed = 0
    this.db.transaction(() => {
      for (const id of ids) removed += this.removeOne.run(id).changes
    })()
    this.pendingCount -= removed
    return removed
  }

  stats(): OutboxStats {
    return { pending: this.pendingCount, dropped: this.droppedCount }
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

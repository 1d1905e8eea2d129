// SQLite's group commit: the fleet's writes of one turn of the event loop share one transaction.
import type Database from 'better-sqlite3'

interface QueuedWrite {
  work: () => unknown
  resolve: (v: unknown) => void
  reject: (e: unknown) => void
}

export class GroupCommit {
  private queue: QueuedWrite[] = []

  constructor(private readonly db: Database.Database) {}

  get pending(): number {
    return this.queue.length
  }

  /**
   * Group commit: writes queued in one turn of the event loop share one transaction, so one fsync
   * covers every agent's events of that turn. Each write runs in its own savepoint: one that throws
   * is rolled back and rejected alone. The promise settles once the write is durable; callers ack
   * or answer only then.
   */
  write<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.db.open) return reject(new Error('the fleet database is closed'))
      if (this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject }) === 1)
        setImmediate(() => this.flush())
    })
  }

  /** commits what is queued now: on a turn of the event loop, or before the database closes */
  flush(): void {
    const batch = this.queue
    this.queue = []
    const outcomes: { ok: boolean; value: unknown }[] = []
    try {
      this.db.transaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.db.transaction(item.work)() })
          } catch (err) {
            outcomes.push({ ok: false, value: err })
          }
        }
      })()
    } catch (err) {
      for (const item of batch) item.reject(err)
      return
    }
    batch.forEach((item, i) => (outcomes[i].ok ? item.resolve(outcomes[i].value) : item.reject(outcomes[i].value)))
  }
}

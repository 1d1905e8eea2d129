// Writes of the PostgreSQL store that many connections make at once, grouped: the event and result
// batches of every connection share one transaction, and the marks of commands sent one statement.
import type pg from 'pg'
import type { CommandResult, EventMessage } from '../../../protocol.js'
import type { BatchOutcome } from '../fleet-store.js'
import { json } from '../mappers.js'
import type { PgContext } from './connection.js'

interface QueuedBatch {
  hostId: string
  events: EventMessage[]
  results: CommandResult[]
  resolve: (v: BatchOutcome) => void
  reject: (e: unknown) => void
}

/** the instant a job record's `ts` names; an unreadable one counts as now, as the SQLite store does */
export function instantOf(ts: unknown, now: Date): Date {
  const at = typeof ts === 'string' ? Date.parse(ts) : NaN
  return Number.isNaN(at) ? now : new Date(at)
}

export class BatchWriter {
  private queue: QueuedBatch[] = []
  private running: { commandId: string; resolve: () => void; reject: (e: unknown) => void }[] = []
  private flushing = false
  private closed = false

  constructor(private readonly ctx: PgContext) {}

  /**
   * Group commit, as the SQLite store does: the batches of every connection queued while the last
   * transaction ran share the next one. When that one fails, each batch is tried alone so that one
   * bad batch is rejected alone.
   */
  recordBatch(hostId: string, events: EventMessage[], results: CommandResult[]): Promise<BatchOutcome> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the fleet database is closed'))
      this.queue.push({ hostId, events, results, resolve, reject })
      if (!this.flushing) void this.flushBatches()
    })
  }

  private async flushBatches(): Promise<void> {
    this.flushing = true
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0)
        try {
          const outcomes = await this.ctx.transaction((c) => this.storeBatches(c, batch))
          batch.forEach((b, i) => b.resolve(outcomes[i]))
        } catch {
          for (const b of batch) {
            await this.ctx
              .transaction((c) => this.storeBatches(c, [b]))
              .then(
                ([outcome]) => b.resolve(outcome),
                (err) => b.reject(err),
              )
          }
        }
      }
    } finally {
      this.flushing = false
    }
  }

  private async storeBatches(c: pg.PoolClient, batches: QueuedBatch[]): Promise<BatchOutcome[]> {
    const receivedAt = this.ctx.stamp()
    const events = batches.flatMap((b) => b.events)
    const added = new Set<string>()
    if (events.length) {
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO events (id, host_id, type, ts, data, received_at)
         SELECT e.id, e.host_id, e.type, e.ts, e.data, $6
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
           AS e(id, host_id, type, ts, data, n)
         ORDER BY e.n
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [
          events.map((e) => e.id),
          events.map((e) => e.hostId),
          events.map((e) => e.eventType),
          events.map((e) => e.ts),
          events.map((e) => JSON.stringify(e.data)),
          receivedAt,
        ],
      )
      for (const r of rows) added.add(r.id)
    }
    // A resent event may arrive after a newer one: keep the newest by the event's own time.
    const now = this.ctx.now()
    for (const e of events) {
      if (!added.has(e.id)) continue
      const column = e.eventType === 'prune.finished' ? 'prune' : e.eventType === 'prewarm.finished' ? 'prewarm' : null
      if (!column) continue
      await c.query(
        `UPDATE hosts SET last_${column} = $2, last_${column}_at = $3
         WHERE host_id = $1 AND (last_${column}_at IS NULL OR last_${column}_at <= $3)`,
        [e.hostId, JSON.stringify({ ts: e.ts, ...e.data }), instantOf(e.ts, now)],
      )
    }
    const results = batches.flatMap((b) => b.results)
    const finished = new Set<string>()
    if (results.length) {
      // A result counts only for a command of the host that sent it.
      const { rows } = await c.query<{ command_id: string; host_id: string }>(
        // A result for a command already finished (timed out, or answered before) changes nothing.
        `UPDATE commands SET
           status = CASE WHEN commands.status IN ('pending', 'running') THEN r.status ELSE commands.status END,
           result = CASE WHEN commands.status IN ('pending', 'running') THEN r.result ELSE commands.result END,
           error = CASE WHEN commands.status IN ('pending', 'running') THEN r.error ELSE commands.error END,
           updated_at = CASE WHEN commands.status IN ('pending', 'running') THEN $6 ELSE commands.updated_at END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
           AS r(command_id, host_id, status, result, error)
         WHERE commands.command_id = r.command_id AND commands.host_id = r.host_id
         RETURNING commands.command_id, commands.host_id`,
        [
          results.map((r) => r.commandId),
          results.map((r) => r.hostId),
          results.map((r) => (r.ok ? 'succeeded' : 'failed')),
          results.map((r) => json(r.result)),
          results.map((r) => r.error ?? null),
          receivedAt,
        ],
      )
      for (const r of rows) finished.add(`${r.host_id}\n${r.command_id}`)
    }
    const outcomes: BatchOutcome[] = batches.map((b) => ({
      // Deleted once counted: an id twice in one transaction counts once.
      added: b.events.filter((e) => added.delete(e.id)).length,
      unknownResults: b.results.filter((r) => !finished.has(`${r.hostId}\n${r.commandId}`)).map((r) => r.commandId),
    }))
    const hostIds = [...new Set(batches.map((b) => b.hostId))]
    await c.query('UPDATE hosts SET last_seen = $1 WHERE host_id = ANY($2)', [receivedAt, hostIds])
    return outcomes
  }

  /**
   * Marks of one turn share one statement, committed without waiting for the disk: a mark lost in a
   * crash leaves the command pending, and it is sent again (the agent runs each id once).
   */
  markRunning(commandId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.running.push({ commandId, resolve, reject }) > 1) return
      setImmediate(() => {
        const marks = this.running.splice(0)
        this.ctx
          .transaction(async (c) => {
            await c.query('SET LOCAL synchronous_commit = off')
            await c.query(
              `UPDATE commands SET status = 'running', updated_at = $2
             WHERE command_id = ANY($1) AND status IN ('pending', 'running')`,
              [marks.map((m) => m.commandId), this.ctx.stamp()],
            )
          })
          .then(
            () => marks.forEach((m) => m.resolve()),
            (err) => marks.forEach((m) => m.reject(err)),
          )
      })
    })
  }

  /** Waits for every queued write; later ones are refused. */
  async close(): Promise<void> {
    while (this.flushing || this.queue.length || this.running.length) {
      if (!this.flushing) void this.flushBatches()
      await new Promise((r) => setTimeout(r, 10))
    }
    this.closed = true
  }
}

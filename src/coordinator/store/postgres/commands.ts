// Commands in PostgreSQL: a table every replica reads, and a NOTIFY on creation that tells every
// replica, which sends the command if the host is connected there.
import { randomUUID } from 'node:crypto'
import type { CommandAction } from '../../../protocol.js'
import type { CommandFilter, CommandRecord } from '../fleet-store.js'
import { normaliseRow, toCommand } from '../mappers.js'
import type { PgContext, Queryable } from './connection.js'
import { COMMANDS_CHANNEL } from './listener.js'

export class PostgresCommands {
  constructor(private readonly ctx: PgContext) {}

  /** Inserts a pending command and notifies every replica in one statement: the NOTIFY goes out on commit. */
  async insert(c: Queryable, hostId: string, action: CommandAction, args: Record<string, unknown>): Promise<string> {
    const commandId = randomUUID()
    const at = this.ctx.stamp()
    await c.query(
      `WITH added AS (
         INSERT INTO commands (command_id, host_id, action, args, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING host_id
       )
       SELECT pg_notify('${COMMANDS_CHANNEL}', host_id) FROM added`,
      [commandId, hostId, action, JSON.stringify(args), at],
    )
    return commandId
  }

  async createUnlessWaiting(hostId: string, action: CommandAction, args: Record<string, unknown>) {
    return this.ctx.transaction(async (c) => {
      // Two replicas handling the same alert at once: the second waits here, then sees the first's command.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gpuhost-command:${hostId}:${action}`])
      const { rows } = await c.query<{ command_id: string }>(
        `SELECT command_id FROM commands WHERE host_id = $1 AND action = $2 AND status IN ('pending', 'running')
         ORDER BY seq LIMIT 1`,
        [hostId, action],
      )
      if (rows.length) return { waiting: rows[0].command_id }
      return { commandId: await this.insert(c, hostId, action, args) }
    })
  }

  async one(commandId: string): Promise<CommandRecord | null> {
    const { rows } = await this.ctx.pool.query('SELECT * FROM commands WHERE command_id = $1', [commandId])
    return rows.length ? toCommand(normaliseRow(rows[0])) : null
  }

  async list(filter: CommandFilter): Promise<CommandRecord[]> {
    const where = ['true']
    const params: unknown[] = []
    if (filter.hostId) where.push(`host_id = $${params.push(filter.hostId)}`)
    if (filter.action) where.push(`action = $${params.push(filter.action)}`)
    if (filter.status) where.push(`status = $${params.push(filter.status)}`)
    const { rows } = await this.ctx.pool.query(
      `SELECT * FROM (
         SELECT * FROM commands WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT $${params.push(filter.limit)}
       ) c ORDER BY seq`,
      params,
    )
    return rows.map((r) => toCommand(normaliseRow(r)))
  }

  async pending(hostId: string): Promise<CommandRecord[]> {
    const { rows } = await this.ctx.pool.query(
      `SELECT * FROM commands WHERE host_id = $1 AND status IN ('pending', 'running') ORDER BY created_at, seq`,
      [hostId],
    )
    return rows.map((r) => toCommand(normaliseRow(r)))
  }

  async hostsWithPending(): Promise<string[]> {
    const { rows } = await this.ctx.pool.query<{ host_id: string }>(
      "SELECT DISTINCT host_id FROM commands WHERE status IN ('pending', 'running')",
    )
    return rows.map((r) => r.host_id)
  }

  async expire(timeoutSeconds: number): Promise<number> {
    const cutoff = new Date(this.ctx.now().getTime() - timeoutSeconds * 1000).toISOString()
    const { rowCount } = await this.ctx.pool.query(
      `UPDATE commands SET status = 'failed', error = $1, updated_at = $2
       WHERE status IN ('pending', 'running') AND created_at < $3`,
      [`no result within ${timeoutSeconds} s`, this.ctx.stamp(), cutoff],
    )
    return rowCount ?? 0
  }

  async counts() {
    const { rows } = await this.ctx.pool.query<{ action: string; status: string; n: number }>(
      'SELECT action, status, count(*)::int AS n FROM commands GROUP BY action, status',
    )
    return rows
  }
}

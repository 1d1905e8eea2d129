// The replicas sharing one PostgreSQL store: each beats a heartbeat row, and the survivors mark the
// hosts of one silent for three beats disconnected. Leases give work to one replica at a time.
import type { PgContext } from './connection.js'

export class Replicas {
  /** hosts connected to this replica now (hello recorded, no disconnect yet) */
  readonly mine = new Set<string>()
  /** whether this replica has written its heartbeat row once */
  private beaten = false
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly ctx: PgContext,
    /** a heartbeat row is written this often; a replica silent for three beats is taken as dead */
    private readonly heartbeatSeconds: number,
  ) {}

  /** beats every heartbeatSeconds from now on, until leave() */
  start(): void {
    this.timer = setInterval(
      () =>
        void this.heartbeat().catch((err: Error) =>
          this.ctx.log.warn({ err: err.message }, 'fleet store heartbeat failed'),
        ),
      this.heartbeatSeconds * 1000,
    )
    this.timer.unref()
  }

  /** Beats this replica's row; marks the hosts of replicas silent for three beats disconnected. */
  async heartbeat(): Promise<void> {
    const { pool, replicaId, log } = this.ctx
    const deadAfter = this.heartbeatSeconds * 3
    const beat = await pool.query<{ inserted: boolean }>(
      `INSERT INTO replicas (id, started_at, heartbeat_at) VALUES ($1, now(), now())
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now() RETURNING (xmax = 0) AS inserted`,
      [replicaId],
    )
    // The row was gone: another replica took this one for dead (the database was away longer than
    // three beats) and marked its hosts disconnected, though their connections here are alive.
    if (this.beaten && beat.rows[0]?.inserted && this.mine.size > 0) {
      const { rowCount } = await pool.query('UPDATE hosts SET connected = true, replica = $1 WHERE host_id = ANY($2)', [
        replicaId,
        [...this.mine],
      ])
      log.warn({ hosts: rowCount }, 'this replica was taken for dead: its connected hosts are marked again')
    }
    this.beaten = true
    const { rows } = await pool.query<{ id: string }>(
      'DELETE FROM replicas WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING id',
      [deadAfter],
    )
    if (!rows.length) return
    const dead = rows.map((r) => r.id)
    // Commands sent on a dead replica's connections go back to pending: they are sent again when
    // the host says hello to a live replica (the agent runs each command id once), or expire.
    const { rowCount } = await pool.query(
      `WITH gone AS (
         UPDATE hosts SET connected = false, replica = NULL WHERE replica = ANY($1) RETURNING host_id
       )
       UPDATE commands SET status = 'pending', updated_at = $2
       WHERE status = 'running' AND host_id IN (SELECT host_id FROM gone)`,
      [dead, this.ctx.stamp()],
    )
    log.warn({ replicas: dead, commandsToResend: rowCount }, 'coordinator replicas stopped beating')
  }

  /** Takes or renews the lease `name` for `seconds`: true while this replica holds it. */
  async holdLease(name: string, seconds: number): Promise<boolean> {
    const { rows } = await this.ctx.pool.query(
      `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = excluded.expires_at
         WHERE leases.holder = $2 OR leases.expires_at < now()
       RETURNING holder`,
      [name, this.ctx.replicaId, seconds],
    )
    return rows.length > 0
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  /** Leaves the replica set: its hosts are marked disconnected now rather than after three missed beats. */
  async leave(): Promise<void> {
    const { pool, replicaId, log } = this.ctx
    this.stop()
    const warn = (what: string) => (err: Error) => log.warn({ err: err.message }, `fleet store ${what} failed`)
    // Leases are handed back at once: another replica takes over rollouts without waiting them out.
    await pool.query('DELETE FROM leases WHERE holder = $1', [replicaId]).catch(warn('leaving'))
    await pool
      .query(
        `WITH gone AS (DELETE FROM replicas WHERE id = $1)
         UPDATE hosts SET connected = false, replica = NULL, last_seen = $2 WHERE replica = $1`,
        [replicaId, this.ctx.stamp()],
      )
      .catch(warn('leaving the replica set'))
  }
}

// Rollouts in PostgreSQL: the RolloutStore over the tables of migration 2 (schema.ts). A change to a rollout
// locks its row (FOR UPDATE), so a pause or cancel through one replica and a step of the driver on
// another are applied one after the other, and a step stored after a pause is refused.
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { RolloutSpec, RolloutState } from '../../rollouts/plan.js'
import type { CoordinatorEvent, Rollout, RolloutChanges, RolloutHostPatch, RolloutStore } from '../../rollouts/store.js'
import { normaliseRow, toRollout, toRolloutHost, type Row } from '../mappers.js'
import type { Queryable } from './connection.js'

const FINISHED = "('succeeded', 'failed', 'cancelled')"
const HOST_COLUMNS: Record<keyof RolloutHostPatch, string> = {
  state: 'state',
  reason: 'reason',
  commandId: 'command_id',
  images: 'images',
  bytesPulled: 'bytes_pulled',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
}

export interface PostgresRolloutsDeps {
  pool: pg.Pool
  transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T>
  /** inserts a pending command and notifies every replica on commit */
  insertCommand(c: pg.PoolClient, hostId: string, action: 'prewarm', args: Record<string, unknown>): Promise<string>
  stamp(): string
  /** this replica, as it holds leases */
  replicaId: string
}

export class PostgresRollouts implements RolloutStore {
  constructor(private readonly deps: PostgresRolloutsDeps) {}

  private async record(c: pg.PoolClient, events: CoordinatorEvent[]): Promise<void> {
    const at = this.deps.stamp()
    for (const e of events) {
      await c.query('INSERT INTO events (id, host_id, type, ts, data, received_at) VALUES ($1, $2, $3, $4, $5, $4)', [
        randomUUID(),
        e.hostId,
        e.type,
        at,
        JSON.stringify(e.data),
      ])
    }
  }

  private async setState(c: pg.PoolClient, id: string, state: RolloutState): Promise<void> {
    await c.query(
      `UPDATE rollouts SET state = $2, updated_at = $3,
         finished_at = CASE WHEN $2 IN ${FINISHED} THEN coalesce(finished_at, $3) ELSE NULL END
       WHERE id = $1`,
      [id, state, this.deps.stamp()],
    )
  }

  /** the rollout's state, its row locked until the transaction ends; null when there is none */
  private async lockedState(c: pg.PoolClient, id: string): Promise<RolloutState | null> {
    const { rows } = await c.query<{ state: RolloutState }>('SELECT state FROM rollouts WHERE id = $1 FOR UPDATE', [id])
    return rows[0]?.state ?? null
  }

  async createRollout(id: string, spec: RolloutSpec, hostIds: string[], events: CoordinatorEvent[]): Promise<void> {
    await this.deps.transaction(async (c) => {
      const at = this.deps.stamp()
      await c.query(
        `INSERT INTO rollouts (id, state, spec, created_at, updated_at) VALUES ($1, 'running', $2, $3, $3)`,
        [id, JSON.stringify(spec), at],
      )
      await c.query(
        `INSERT INTO rollout_hosts (rollout_id, host_id, state) SELECT $1, h, 'pending' FROM unnest($2::text[]) AS h
         ON CONFLICT DO NOTHING`,
        [id, hostIds],
      )
      await this.record(c, events)
    })
  }

  async rollout(id: string, c: Queryable = this.deps.pool): Promise<Rollout | null> {
    const { rows } = await c.query('SELECT * FROM rollouts WHERE id = $1', [id])
    return rows.length ? this.toRollout(rows[0], c) : null
  }

  async rollouts(limit: number): Promise<Rollout[]> {
    const { rows } = await this.deps.pool.query('SELECT * FROM rollouts ORDER BY created_at DESC, seq DESC LIMIT $1', [
      limit,
    ])
    return Promise.all(rows.map((r) => this.toRollout(r, this.deps.pool)))
  }

  async activeRolloutIds(): Promise<string[]> {
    const { rows } = await this.deps.pool.query<{ id: string }>(
      `SELECT id FROM rollouts WHERE state NOT IN ${FINISHED}
         OR id IN (SELECT rollout_id FROM rollout_hosts WHERE state = 'running')
       ORDER BY created_at, seq`,
    )
    return rows.map((r) => r.id)
  }

  async transitionRollout(
    id: string,
    from: RolloutState[],
    to: RolloutState,
    eventsOf: (r: Rollout) => CoordinatorEvent[],
  ): Promise<boolean | null> {
    return this.deps.transaction(async (c) => {
      const state = await this.lockedState(c, id)
      if (state === null) return null
      if (!from.includes(state)) return false
      await this.setState(c, id, to)
      await this.record(c, eventsOf((await this.rollout(id, c))!))
      return true
    })
  }

  async addRolloutHost(id: string, hostId: string): Promise<boolean> {
    return this.deps.transaction(async (c) => {
      if ((await this.lockedState(c, id)) !== 'running') return false
      const { rowCount } = await c.query(
        `INSERT INTO rollout_hosts (rollout_id, host_id, state) VALUES ($1, $2, 'pending') ON CONFLICT DO NOTHING`,
        [id, hostId],
      )
      if (!rowCount) return false
      await c.query('UPDATE rollouts SET updated_at = $2 WHERE id = $1', [id, this.deps.stamp()])
      return true
    })
  }

  async applyRolloutChanges(id: string, changes: RolloutChanges): Promise<boolean> {
    return this.deps.transaction(async (c) => {
      if ((await this.lockedState(c, id)) !== changes.expect) return false
      if (changes.lease) {
        const held = await c.query(
          'SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND expires_at > now() FOR SHARE',
          [changes.lease, this.deps.replicaId],
        )
        if (!held.rowCount) return false
      }
      for (const h of changes.hosts) {
        const commandId = h.prewarm ? await this.deps.insertCommand(c, h.hostId, 'prewarm', h.prewarm) : undefined
        await this.updateHost(c, id, h.hostId, { ...h.patch, ...(commandId ? { commandId } : {}) })
      }
      if (changes.finish) await this.setState(c, id, changes.finish)
      else await c.query('UPDATE rollouts SET updated_at = $2 WHERE id = $1', [id, this.deps.stamp()])
      await this.record(c, changes.events)
      return true
    })
  }

  private async updateHost(c: pg.PoolClient, id: string, hostId: string, patch: RolloutHostPatch): Promise<void> {
    const keys = (Object.keys(HOST_COLUMNS) as (keyof RolloutHostPatch)[]).filter((k) => patch[k] !== undefined)
    if (!keys.length) return
    const values = keys.map((k) => (k === 'images' ? JSON.stringify(patch.images) : patch[k]))
    const set = keys.map((k, i) => `${HOST_COLUMNS[k]} = $${i + 3}`).join(', ')
    await c.query(`UPDATE rollout_hosts SET ${set} WHERE rollout_id = $1 AND host_id = $2`, [id, hostId, ...values])
  }

  async rolloutCounts() {
    const { rows } = await this.deps.pool.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM rollouts GROUP BY state',
    )
    return rows
  }

  async rolloutHostCounts() {
    const { rows } = await this.deps.pool.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM rollout_hosts GROUP BY state',
    )
    return rows
  }

  async rolloutBytesPulled(): Promise<number> {
    const { rows } = await this.deps.pool.query<{ n: string }>(
      'SELECT coalesce(sum(bytes_pulled), 0) AS n FROM rollout_hosts',
    )
    return Number(rows[0].n)
  }

  async rolloutBytesBySource(): Promise<{ sourceKind: string; n: number }[]> {
    const { rows } = await this.deps.pool.query<{ source_kind: string; n: string }>(
      `SELECT i->>'sourceKind' AS source_kind, coalesce(sum((i->>'bytesPulled')::numeric), 0) AS n
       FROM rollout_hosts, jsonb_array_elements(rollout_hosts.images::jsonb) AS i
       WHERE i->>'status' = 'pulled' AND i->>'sourceKind' IS NOT NULL
       GROUP BY 1`,
    )
    return rows.map((r) => ({ sourceKind: r.source_kind, n: Number(r.n) }))
  }

  private async toRollout(r: Row, c: Queryable): Promise<Rollout> {
    const { rows } = await c.query('SELECT * FROM rollout_hosts WHERE rollout_id = $1 ORDER BY host_id COLLATE "C"', [
      r.id,
    ])
    return toRollout(
      normaliseRow(r),
      rows.map((h: Row) => toRolloutHost(normaliseRow(h))),
    )
  }
}

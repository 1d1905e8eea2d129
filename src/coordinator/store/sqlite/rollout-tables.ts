// SQLite's rollout tables: the synchronous part of the RolloutStore, called inside SqliteFleet.write
// so that a rollout's change, its commands and its events share one group-committed transaction.
import type Database from 'better-sqlite3'
import type { Clock } from '../../../core/clock.js'
import type { RolloutSpec, RolloutState } from '../../rollouts/plan.js'
import type { Rollout, RolloutHostPatch } from '../../rollouts/store.js'
import { toRollout, toRolloutHost, type Row } from '../mappers.js'

/** SQLite's rollout tables, synchronous, for SqliteFleet */
export interface RolloutTables {
  createRollout(id: string, spec: RolloutSpec, hostIds: string[]): void
  rollout(id: string): Rollout | null
  /** newest first */
  rollouts(limit: number): Rollout[]
  /** running or paused, or with a host still running (a cancelled rollout records its last results) */
  activeRolloutIds(): string[]
  setRolloutState(id: string, state: RolloutState): void
  /** adds a pending host; false when it is already part of the rollout */
  addRolloutHost(id: string, hostId: string): boolean
  updateRolloutHost(id: string, hostId: string, patch: RolloutHostPatch): void
  rolloutCounts(): { state: string; n: number }[]
  rolloutHostCounts(): { state: string; n: number }[]
  rolloutBytesPulled(): number
  rolloutBytesBySource(): { sourceKind: string; n: number }[]
}

export const ROLLOUT_SCHEMA = `
CREATE TABLE IF NOT EXISTS rollouts (
  id TEXT PRIMARY KEY, state TEXT NOT NULL, spec TEXT NOT NULL,
  createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL, finishedAt TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_state ON rollouts (state);
CREATE TABLE IF NOT EXISTS rollout_hosts (
  rolloutId TEXT NOT NULL, hostId TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, commandId TEXT,
  images TEXT NOT NULL DEFAULT '[]', bytesPulled INTEGER NOT NULL DEFAULT 0, startedAt TEXT, finishedAt TEXT,
  PRIMARY KEY (rolloutId, hostId)
);
CREATE INDEX IF NOT EXISTS rollout_hosts_state ON rollout_hosts (state);
`

const HOST_COLUMNS = [
  'state',
  'reason',
  'commandId',
  'images',
  'bytesPulled',
  'startedAt',
  'finishedAt',
] as const satisfies readonly (keyof RolloutHostPatch)[]

const FINISHED = "('succeeded', 'failed', 'cancelled')"

export class SqliteRolloutTables implements RolloutTables {
  private readonly stmt: Record<string, Database.Statement>

  constructor(
    private readonly db: Database.Database,
    private readonly now: Clock,
  ) {
    const p = (sql: string) => db.prepare(sql)
    this.stmt = {
      insert: p(`INSERT INTO rollouts (id, state, spec, createdAt, updatedAt) VALUES (?, 'running', ?, ?, ?)`),
      insertHost: p(`INSERT OR IGNORE INTO rollout_hosts (rolloutId, hostId, state) VALUES (?, ?, 'pending')`),
      get: p('SELECT * FROM rollouts WHERE id = ?'),
      list: p('SELECT * FROM rollouts ORDER BY createdAt DESC, rowid DESC LIMIT ?'),
      hosts: p('SELECT * FROM rollout_hosts WHERE rolloutId = ? ORDER BY hostId'),
      active: p(`SELECT id FROM rollouts WHERE state NOT IN ${FINISHED}
        OR id IN (SELECT rolloutId FROM rollout_hosts WHERE state = 'running') ORDER BY createdAt, rowid`),
      setState: p(`UPDATE rollouts SET state = @state, updatedAt = @at,
        finishedAt = CASE WHEN @state IN ${FINISHED} THEN coalesce(finishedAt, @at) ELSE NULL END WHERE id = @id`),
      touch: p('UPDATE rollouts SET updatedAt = ? WHERE id = ?'),
      counts: p('SELECT state, count(*) AS n FROM rollouts GROUP BY state'),
      hostCounts: p('SELECT state, count(*) AS n FROM rollout_hosts GROUP BY state'),
      bytes: p('SELECT coalesce(sum(bytesPulled), 0) AS n FROM rollout_hosts'),
      bytesBySource: p(`SELECT json_extract(i.value, '$.sourceKind') AS sourceKind,
          coalesce(sum(json_extract(i.value, '$.bytesPulled')), 0) AS n
        FROM rollout_hosts, json_each(rollout_hosts.images) AS i
        WHERE json_extract(i.value, '$.status') = 'pulled' AND json_extract(i.value, '$.sourceKind') IS NOT NULL
        GROUP BY 1`),
    }
  }

  private stamp(): string {
    return this.now().toISOString()
  }

  createRollout(id: string, spec: RolloutSpec, hostIds: string[]): void {
    const at = this.stamp()
    this.stmt.insert.run(id, JSON.stringify(spec), at, at)
    for (const hostId of hostIds) this.stmt.insertHost.run(id, hostId)
  }

  rollout(id: string): Rollout | null {
    const row = this.stmt.get.get(id) as Record<string, unknown> | undefined
    return row ? this.toRollout(row) : null
  }

  rollouts(limit: number): Rollout[] {
    return (this.stmt.list.all(limit) as Record<string, unknown>[]).map((r) => this.toRollout(r))
  }

  activeRolloutIds(): string[] {
    return (this.stmt.active.all() as { id: string }[]).map((r) => r.id)
  }

  setRolloutState(id: string, state: RolloutState): void {
    this.stmt.setState.run({ id, state, at: this.stamp() })
  }

  addRolloutHost(id: string, hostId: string): boolean {
    const added = this.stmt.insertHost.run(id, hostId).changes > 0
    if (added) this.stmt.touch.run(this.stamp(), id)
    return added
  }

  updateRolloutHost(id: string, hostId: string, patch: RolloutHostPatch): void {
    const cols = HOST_COLUMNS.filter((c) => patch[c] !== undefined)
    if (!cols.length) return
    const values: Record<string, unknown> = { id, hostId }
    for (const c of cols) values[c] = c === 'images' ? JSON.stringify(patch.images) : patch[c]
    const set = cols.map((c) => `${c} = @${c}`).join(', ')
    this.db.prepare(`UPDATE rollout_hosts SET ${set} WHERE rolloutId = @id AND hostId = @hostId`).run(values)
    this.stmt.touch.run(this.stamp(), id)
  }

  rolloutCounts(): { state: string; n: number }[] {
    return this.stmt.counts.all() as { state: string; n: number }[]
  }

  rolloutHostCounts(): { state: string; n: number }[] {
    return this.stmt.hostCounts.all() as { state: string; n: number }[]
  }

  rolloutBytesPulled(): number {
    return (this.stmt.bytes.get() as { n: number }).n
  }

  rolloutBytesBySource(): { sourceKind: string; n: number }[] {
    return this.stmt.bytesBySource.all() as { sourceKind: string; n: number }[]
  }

  private toRollout(r: Row): Rollout {
    return toRollout(r, (this.stmt.hosts.all(r.id) as Row[]).map(toRolloutHost))
  }
}

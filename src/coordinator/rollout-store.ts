// Where rollouts are kept: the RolloutStore methods are the whole of what the driver and the API
// need, asynchronous, on every FleetStore engine; each write is one transaction with the commands
// and the coordinator's events it brings. SqliteRolloutTables is SQLite's synchronous part of it,
// called inside SqliteFleet.write (one group-committed transaction).
import type Database from 'better-sqlite3'
import type { Clock } from '../core/clock.js'
import type { ImageOutcome, RolloutHostState, RolloutSpec, RolloutState } from './rollout-plan.js'

export interface RolloutHost {
  hostId: string
  state: RolloutHostState
  reason: string | null
  /** the prewarm command sent to the host; null until it is started */
  commandId: string | null
  images: ImageOutcome[]
  bytesPulled: number
  startedAt: string | null
  finishedAt: string | null
}

export interface Rollout {
  id: string
  state: RolloutState
  spec: RolloutSpec
  createdAt: string
  updatedAt: string
  finishedAt: string | null
  hosts: RolloutHost[]
}

export type RolloutHostPatch = Partial<Omit<RolloutHost, 'hostId'>>

/**
 * the type prefix of the events the coordinator raises: reserved to it, an agent's event of that type
 * is refused (hub.ts), so what /v1/events shows under it is the coordinator's word, not a host's
 */
export const COORDINATOR_EVENT_PREFIX = 'rollout.'

/** an event the coordinator itself raises (rollout.*), stored and listed by /v1/events like the agents' */
export interface CoordinatorEvent {
  type: string
  hostId: string
  data: Record<string, unknown>
}

/** one pass of the driver over one rollout, stored in one transaction */
export interface RolloutChanges {
  /** stored only while the rollout is still in this state: a pause or cancel meanwhile wins */
  expect: RolloutState
  /**
   * stored only while this replica still holds this lease: a replica whose pass outlived its lease
   * (a slow database) must not apply a plan another replica has since acted on
   */
  lease?: string
  hosts: {
    hostId: string
    patch: RolloutHostPatch
    /** a prewarm command to create for the host; its id becomes the host's commandId */
    prewarm?: Record<string, unknown>
  }[]
  finish: RolloutState | null
  events: CoordinatorEvent[]
}

export interface RolloutStore {
  createRollout(id: string, spec: RolloutSpec, hostIds: string[], events: CoordinatorEvent[]): Promise<void>
  rollout(id: string): Promise<Rollout | null>
  /** newest first */
  rollouts(limit: number): Promise<Rollout[]>
  /** running or paused, or with a host still running (a cancelled rollout records its last results) */
  activeRolloutIds(): Promise<string[]>
  /**
   * Moves a rollout from one of `from` to `to`, with the events `eventsOf` the changed rollout
   * gives; false when it is in none of them; null when there is no such rollout.
   */
  transitionRollout(
    id: string,
    from: RolloutState[],
    to: RolloutState,
    eventsOf: (r: Rollout) => CoordinatorEvent[],
  ): Promise<boolean | null>
  /** adds a pending host to a running rollout; false when it is already part of it or it is not running */
  addRolloutHost(id: string, hostId: string): Promise<boolean>
  /** false (nothing stored) when the rollout left `changes.expect` meanwhile */
  applyRolloutChanges(id: string, changes: RolloutChanges): Promise<boolean>
  rolloutCounts(): Promise<{ state: string; n: number }[]>
  rolloutHostCounts(): Promise<{ state: string; n: number }[]>
  rolloutBytesPulled(): Promise<number>
  /** bytes of pulled images over every rollout's hosts by where they came from, as the agents reported it */
  rolloutBytesBySource(): Promise<{ sourceKind: string; n: number }[]>
}

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

  private toRollout(r: Record<string, unknown>): Rollout {
    const hosts = (this.stmt.hosts.all(r.id) as Record<string, unknown>[]).map((h): RolloutHost => ({
      hostId: h.hostId as string,
      state: h.state as RolloutHostState,
      reason: (h.reason as string | null) ?? null,
      commandId: (h.commandId as string | null) ?? null,
      images: JSON.parse(h.images as string) as ImageOutcome[],
      bytesPulled: h.bytesPulled as number,
      startedAt: (h.startedAt as string | null) ?? null,
      finishedAt: (h.finishedAt as string | null) ?? null,
    }))
    return {
      id: r.id as string,
      state: r.state as RolloutState,
      spec: JSON.parse(r.spec as string) as RolloutSpec,
      createdAt: r.createdAt as string,
      updatedAt: r.updatedAt as string,
      finishedAt: (r.finishedAt as string | null) ?? null,
      hosts,
    }
  }
}

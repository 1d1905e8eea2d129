// The coordinator's durable fleet state in SQLite: one row per host, every event once (its id is
// the key, so a resent event is dropped), every command with its status and result. Synchronous,
// for one process; SqliteFleetStore (sqlite-store.ts) puts it behind the FleetStore interface.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { CommandAction, EventMessage, Hello, SnapshotMessage } from '../protocol.js'
import type { StoredPeerServing } from './peer-advert.js'
import { rebuildHostFacts, type HostFacts } from '../inventory/host-facts-schema.js'
import { systemClock, type Clock } from '../core/clock.js'
import { checkSchemaVersion } from './fleet-store.js'
import {
  type CommandRecord,
  type CommandStatus,
  type EventRecord,
  type HostDetail,
  type HostRecord,
} from './records.js'
import { ROLLOUT_SCHEMA, SqliteRolloutTables, type RolloutTables } from './rollout-store.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hosts (
  hostId TEXT PRIMARY KEY, connected INTEGER NOT NULL DEFAULT 0, lastSeen TEXT, version TEXT,
  actions TEXT, gpu TEXT, disk TEXT, images TEXT, localImages TEXT, lastPrune TEXT, lastPrewarm TEXT, labels TEXT
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, hostId TEXT NOT NULL,
  type TEXT NOT NULL, ts TEXT NOT NULL, data TEXT NOT NULL, receivedAt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_host_type ON events (hostId, type, seq);
CREATE INDEX IF NOT EXISTS events_type ON events (type, seq);
CREATE TABLE IF NOT EXISTS commands (
  commandId TEXT PRIMARY KEY, hostId TEXT NOT NULL, action TEXT NOT NULL, args TEXT NOT NULL,
  status TEXT NOT NULL, result TEXT, error TEXT, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_host_status ON commands (hostId, status, createdAt);
`

/**
 * The schema's migrations in order; PRAGMA user_version counts those applied. Append, never edit:
 * a database made by a newer coordinator is refused by an older one. The first is idempotent, as
 * databases from before versioning have user_version 0 and some or all of its tables.
 */
const MIGRATIONS: ((db: Database.Database) => void)[] = [
  (db) => {
    db.exec(SCHEMA)
    // A database made before hosts had labels gains the column.
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'labels')) db.exec('ALTER TABLE hosts ADD COLUMN labels TEXT')
  },
  // Rollouts; IF NOT EXISTS, as some databases gained these tables before versioning.
  (db) => db.exec(ROLLOUT_SCHEMA),
  // What a host serving peers advertised in its hello. Checked first: a database whose version was
  // lost (user_version 0) runs every migration again.
  (db) => {
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'peers')) db.exec('ALTER TABLE hosts ADD COLUMN peers TEXT')
  },
  // The host facts of its hello (OS, CPU, memory, system, block devices); checked first, as above.
  (db) => {
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'host')) db.exec('ALTER TABLE hosts ADD COLUMN host TEXT')
  },
]

/** the schema version this build brings a database to */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length

/** Brings the schema up to this build's version; throws (the database left as it is) when it is newer. */
function migrate(db: Database.Database, file: string): void {
  const found = db.pragma('user_version', { simple: true }) as number
  checkSchemaVersion(found, MIGRATIONS.length, file)
  if (found === MIGRATIONS.length) return
  db.transaction(() => {
    for (let v = found; v < MIGRATIONS.length; v++) MIGRATIONS[v](db)
    db.pragma(`user_version = ${MIGRATIONS.length}`)
  })()
}

/** true when the stored job record `col` is not newer than `param` (both JSON with an ISO `ts`) */
const NEWER = (col: string, param: string): string =>
  `(${col} IS NULL OR julianday(json_extract(${col}, '$.ts')) IS NULL
    OR julianday(json_extract(${col}, '$.ts'))
      <= coalesce(julianday(json_extract(${param}, '$.ts')), julianday('now')))`

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v))
const parse = <T>(v: unknown): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : null)

interface QueuedWrite {
  work: () => unknown
  resolve: (v: unknown) => void
  reject: (e: unknown) => void
}

export class SqliteFleet {
  private readonly db: Database.Database
  private readonly stmt: Record<string, Database.Statement>
  private queue: QueuedWrite[] = []
  /** rollouts and their hosts; written inside write() like everything else */
  readonly rollouts: RolloutTables

  constructor(
    dataDir: string,
    private readonly now: Clock = systemClock,
  ) {
    mkdirSync(dataDir, { recursive: true })
    const file = join(dataDir, 'coordinator.db')
    this.db = new Database(file)
    try {
      this.db.pragma('journal_mode = WAL')
      // An event is acked once stored; FULL makes "stored" survive a power cut, not only a crash.
      this.db.pragma('synchronous = FULL')
      migrate(this.db, file)
    } catch (err) {
      this.db.close()
      throw err
    }
    this.rollouts = new SqliteRolloutTables(this.db, now)
    // Whoever was connected before this process started is not connected to it.
    this.db.exec('UPDATE hosts SET connected = 0')
    const p = (sql: string) => this.db.prepare(sql)
    this.stmt = {
      hello: p(`INSERT INTO hosts
          (hostId, connected, lastSeen, version, actions, gpu, disk, images, labels, peers, host)
        VALUES (@hostId, 1, @lastSeen, @version, @actions, @gpu, @disk, @images, @labels, @peers, @host)
        ON CONFLICT (hostId) DO UPDATE SET connected = 1, lastSeen = @lastSeen, version = @version, actions = @actions,
          gpu = coalesce(@gpu, gpu), disk = coalesce(@disk, disk), images = coalesce(@images, images),
          labels = @labels, peers = @peers, host = @host`),
      snapshot: p(`UPDATE hosts SET lastSeen = @lastSeen, gpu = @gpu, disk = @disk, images = @images,
        localImages = coalesce(@localImages, localImages), labels = coalesce(@labels, labels),
        lastPrune = CASE WHEN @lastPrune IS NOT NULL AND ${NEWER('lastPrune', '@lastPrune')}
          THEN @lastPrune ELSE lastPrune END,
        lastPrewarm = CASE WHEN @lastPrewarm IS NOT NULL AND ${NEWER('lastPrewarm', '@lastPrewarm')}
          THEN @lastPrewarm ELSE lastPrewarm END
        WHERE hostId = @hostId`),
      seen: p('UPDATE hosts SET lastSeen = ? WHERE hostId = ?'),
      disconnected: p('UPDATE hosts SET connected = 0, lastSeen = ? WHERE hostId = ?'),
      // A resent event may arrive after a newer one: keep the newest by the event's own time.
      lastPrune: p(`UPDATE hosts SET lastPrune = @value WHERE hostId = @hostId AND ${NEWER('lastPrune', '@value')}`),
      lastPrewarm: p(`UPDATE hosts SET lastPrewarm = @value
        WHERE hostId = @hostId AND ${NEWER('lastPrewarm', '@value')}`),
      host: p('SELECT * FROM hosts WHERE hostId = ?'),
      hosts: p('SELECT * FROM hosts ORDER BY hostId'),
      insertEvent: p('INSERT OR IGNORE INTO events (id, hostId, type, ts, data, receivedAt) VALUES (?, ?, ?, ?, ?, ?)'),
      eventCount: p('SELECT count(*) AS n FROM events'),
      hostCount: p('SELECT count(*) AS n FROM hosts'),
      hostsWithPending: p("SELECT DISTINCT hostId FROM commands WHERE status IN ('pending', 'running')"),
      insertCommand: p(`INSERT INTO commands (commandId, hostId, action, args, status, createdAt, updatedAt)
        VALUES (?, ?, ?, ?, 'pending', ?, ?)`),
      command: p('SELECT * FROM commands WHERE commandId = ?'),
      // 'running' ones too: a command sent on a connection that then dropped may never have arrived;
      // the agent runs each command id once and answers a repeat with its stored result.
      pendingFor: p(`SELECT * FROM commands WHERE hostId = ? AND status IN ('pending', 'running')
        ORDER BY createdAt, rowid`),
      setStatus: p(
        "UPDATE commands SET status = ?, updatedAt = ? WHERE commandId = ? AND status IN ('pending', 'running')",
      ),
      finish: p(
        // A result for a command already finished (timed out, or answered before) changes nothing:
        // what a rollout or a caller already read stays true.
        `UPDATE commands SET
           status = CASE WHEN status IN ('pending', 'running') THEN ? ELSE status END,
           result = CASE WHEN status IN ('pending', 'running') THEN ? ELSE result END,
           error = CASE WHEN status IN ('pending', 'running') THEN ? ELSE error END,
           updatedAt = CASE WHEN status IN ('pending', 'running') THEN ? ELSE updatedAt END
         WHERE commandId = ? AND hostId = ?`,
      ),
      expire: p(
        `UPDATE commands SET status = 'failed', error = ?, updatedAt = ?
         WHERE status IN ('pending', 'running') AND createdAt < ?`,
      ),
      commandCounts: p('SELECT action, status, count(*) AS n FROM commands GROUP BY action, status'),
    }
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
        setImmediate(() => this.commit())
    })
  }

  private commit(): void {
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

  private stamp(): string {
    return this.now().toISOString()
  }

  recordHello(hello: Hello): void {
    const f = hello.facts as Record<string, unknown>
    this.stmt.hello.run({
      hostId: hello.hostId,
      lastSeen: this.stamp(),
      version: hello.version,
      actions: JSON.stringify(hello.actions),
      gpu: json(f.gpu),
      disk: json(f.disk),
      images: json(f.images),
      labels: JSON.stringify(hello.labels),
      // every hello says it anew: a host that stopped serving is no longer named
      peers: json(hello.facts.peers),
      host: json(rebuildHostFacts(hello.facts.host)),
    })
  }

  recordSnapshot(s: SnapshotMessage): void {
    this.stmt.snapshot.run({
      hostId: s.hostId,
      lastSeen: this.stamp(),
      gpu: json(s.gpu),
      disk: json(s.disk),
      images: json(s.images),
      localImages: json(s.localImages),
      lastPrune: json(s.lastPrune),
      lastPrewarm: json(s.lastPrewarm),
      labels: json(s.labels),
    })
  }

  touch(hostId: string): void {
    this.stmt.seen.run(this.stamp(), hostId)
  }

  recordDisconnect(hostId: string): void {
    this.stmt.disconnected.run(this.stamp(), hostId)
  }

  /** Stores a batch of events in one transaction; returns how many were new (the rest were duplicates). */
  insertEvents(events: EventMessage[]): number {
    const receivedAt = this.stamp()
    return this.db.transaction(() => {
      let added = 0
      for (const e of events) {
        const { changes } = this.stmt.insertEvent.run(
          e.id,
          e.hostId,
          e.eventType,
          e.ts,
          JSON.stringify(e.data),
          receivedAt,
        )
        added += changes
        const value = JSON.stringify({ ts: e.ts, ...e.data })
        if (changes && e.eventType === 'prune.finished') this.stmt.lastPrune.run({ value, hostId: e.hostId })
        if (changes && e.eventType === 'prewarm.finished') this.stmt.lastPrewarm.run({ value, hostId: e.hostId })
      }
      return added
    })()
  }

  /** Stores an event the coordinator itself raised (rollout.*), listed by /v1/events like the agents' ones. */
  recordCoordinatorEvent(type: string, hostId: string, data: Record<string, unknown>): void {
    const at = this.stamp()
    this.stmt.insertEvent.run(randomUUID(), hostId, type, at, JSON.stringify(data), at)
  }

  eventCount(): number {
    return (this.stmt.eventCount.get() as { n: number }).n
  }

  events(filter: { hostId?: string; type?: string; after?: number; limit: number }): {
    events: (EventRecord & { seq: number })[]
  } {
    const where: string[] = ['seq > @after']
    if (filter.hostId) where.push('hostId = @hostId')
    if (filter.type) where.push('type = @type')
    const rows = this.db
      .prepare(
        `SELECT seq, id, hostId, type, ts, data FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`,
      )
      .all({ after: filter.after ?? 0, hostId: filter.hostId, type: filter.type, limit: filter.limit }) as Record<
      string,
      unknown
    >[]
    return {
      events: rows.map((r) => ({
        seq: r.seq as number,
        id: r.id as string,
        hostId: r.hostId as string,
        type: r.type as string,
        ts: r.ts as string,
        data: parse(r.data)!,
      })),
    }
  }

  hostCount(): number {
    return (this.stmt.hostCount.get() as { n: number }).n
  }

  hostsWithPendingCommands(): string[] {
    return (this.stmt.hostsWithPending.all() as { hostId: string }[]).map((r) => r.hostId)
  }

  host(hostId: string): HostDetail | null {
    const row = this.stmt.host.get(hostId) as Record<string, unknown> | undefined
    return row ? toHost(row) : null
  }

  hosts(): HostDetail[] {
    return (this.stmt.hosts.all() as Record<string, unknown>[]).map(toHost)
  }

  createCommand(hostId: string, action: CommandAction, args: Record<string, unknown>): string {
    const commandId = randomUUID()
    const at = this.stamp()
    this.stmt.insertCommand.run(commandId, hostId, action, JSON.stringify(args), at, at)
    return commandId
  }

  command(commandId: string): CommandRecord | null {
    const row = this.stmt.command.get(commandId) as Record<string, unknown> | undefined
    return row ? toCommand(row) : null
  }

  /** Commands oldest first, by host, action and status when given. */
  commands(filter: { hostId?: string; action?: string; status?: string; limit: number }): CommandRecord[] {
    const where = ['1 = 1']
    if (filter.hostId) where.push('hostId = @hostId')
    if (filter.action) where.push('action = @action')
    if (filter.status) where.push('status = @status')
    const rows = this.db
      .prepare(
        `SELECT * FROM (
           SELECT rowid AS r, * FROM commands WHERE ${where.join(' AND ')} ORDER BY rowid DESC LIMIT @limit
         ) ORDER BY r`,
      )
      .all({ hostId: filter.hostId, action: filter.action, status: filter.status, limit: filter.limit }) as Record<
      string,
      unknown
    >[]
    return rows.map(toCommand)
  }

  /** Commands of a host without a result yet, oldest first: pending, or sent and maybe lost. */
  pendingCommands(hostId: string): CommandRecord[] {
    return (this.stmt.pendingFor.all(hostId) as Record<string, unknown>[]).map(toCommand)
  }

  markRunning(commandId: string): void {
    this.stmt.setStatus.run('running', this.stamp(), commandId)
  }

  /** Records a result from `hostId`; false when no such command of that host exists. */
  finishCommand(hostId: string, commandId: string, ok: boolean, result: unknown, error: string | undefined): boolean {
    const { changes } = this.stmt.finish.run(
      ok ? 'succeeded' : 'failed',
      json(result),
      error ?? null,
      this.stamp(),
      commandId,
      hostId,
    )
    return changes > 0
  }

  /** Fails commands still pending or running after `timeoutSeconds`; returns how many. */
  expireCommands(timeoutSeconds: number): number {
    const cutoff = new Date(this.now().getTime() - timeoutSeconds * 1000).toISOString()
    return this.stmt.expire.run(`no result within ${timeoutSeconds} s`, this.stamp(), cutoff).changes
  }

  commandCounts(): { action: string; status: string; n: number }[] {
    return this.stmt.commandCounts.all() as { action: string; status: string; n: number }[]
  }

  close(): void {
    if (!this.db.open) return
    if (this.queue.length) this.commit()
    this.db.close()
  }
}

function toHost(r: Record<string, unknown>): HostDetail {
  return {
    hostId: r.hostId as string,
    connected: r.connected === 1,
    lastSeen: (r.lastSeen as string | null) ?? null,
    version: (r.version as string | null) ?? null,
    gpu: parse(r.gpu),
    disk: parse(r.disk),
    images: parse(r.images),
    lastPrune: parse(r.lastPrune),
    lastPrewarm: parse(r.lastPrewarm),
    labels: parse<Record<string, string>>(r.labels) ?? {},
    peers: parse<StoredPeerServing>(r.peers),
    host: parse<HostFacts>(r.host),
    actions: parse<string[]>(r.actions) ?? [],
    localImages: parse(r.localImages),
  }
}

function toCommand(r: Record<string, unknown>): CommandRecord {
  return {
    commandId: r.commandId as string,
    hostId: r.hostId as string,
    action: r.action as CommandAction,
    args: parse(r.args) ?? {},
    status: r.status as CommandStatus,
    result: parse(r.result),
    error: (r.error as string | null) ?? null,
    createdAt: r.createdAt as string,
    updatedAt: r.updatedAt as string,
  }
}

/** A host as the API shows it: the record of INTERFACES.md, without the bulky local image list. */
export function publicHost(h: HostDetail): HostRecord {
  const { actions: _actions, localImages: _images, ...record } = h
  return record
}

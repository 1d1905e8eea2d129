// The coordinator's durable fleet state in SQLite: one row per host, every event once (its id is
// the key, so a resent event is dropped), every command with its status and result. Synchronous,
// for one process; SqliteFleetStore (fleet-store.ts) puts it behind the FleetStore interface.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { CommandAction, EventMessage, Hello, SnapshotMessage } from '../../../protocol.js'
import { rebuildHostFacts } from '../../../inventory/host-facts-schema.js'
import { systemClock, type Clock } from '../../../core/clock.js'
import type { CommandRecord, EventRecord, HostDetail } from '../records.js'
import { json, toCommand, toEvent, toHost, type Row } from '../mappers.js'
import { GroupCommit } from './group-commit.js'
import { migrate } from './schema.js'
import { prepareStatements } from './statements.js'
import { SqliteRolloutTables, type RolloutTables } from './rollout-tables.js'

export { SQLITE_SCHEMA_VERSION } from './schema.js'

export class SqliteFleet {
  private readonly db: Database.Database
  private readonly stmt: Record<string, Database.Statement>
  private readonly commits: GroupCommit
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
    this.stmt = prepareStatements(this.db)
    this.commits = new GroupCommit(this.db)
  }

  /** a write, group-committed with the others of this turn; settles once it is durable */
  write<T>(work: () => T): Promise<T> {
    return this.commits.write(work)
  }

  private stamp(): string {
    return this.now().toISOString()
  }

  recordHello(hello: Hello): void {
    const f = hello.facts as Row
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
      host: json(s.host ? rebuildHostFacts(s.host) : null),
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
  recordCoordinatorEvent(type: string, hostId: string, data: Row): void {
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
      events: rows.map(toEvent),
    }
  }

  hostCount(): number {
    return (this.stmt.hostCount.get() as { n: number }).n
  }

  hostsWithPendingCommands(): string[] {
    return (this.stmt.hostsWithPending.all() as { hostId: string }[]).map((r) => r.hostId)
  }

  host(hostId: string): HostDetail | null {
    const row = this.stmt.host.get(hostId) as Row | undefined
    return row ? toHost(row) : null
  }

  hosts(): HostDetail[] {
    return (this.stmt.hosts.all() as Row[]).map(toHost)
  }

  createCommand(hostId: string, action: CommandAction, args: Row): string {
    const commandId = randomUUID()
    const at = this.stamp()
    this.stmt.insertCommand.run(commandId, hostId, action, JSON.stringify(args), at, at)
    return commandId
  }

  command(commandId: string): CommandRecord | null {
    const row = this.stmt.command.get(commandId) as Row | undefined
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
    return (this.stmt.pendingFor.all(hostId) as Row[]).map(toCommand)
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
    if (this.commits.pending) this.commits.flush()
    this.db.close()
  }
}

// The FleetStore interface over PostgreSQL, shared by any number of coordinator replicas. Events are
// unique by id in the table, so a resend through any replica is dropped; commands live in a table
// and a NOTIFY on creation tells every replica, which sends it if the host is connected there. Each
// replica beats a heartbeat row; the survivors mark a silent one's hosts disconnected.
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { CommandAction, CommandResult, EventMessage, Hello, SnapshotMessage } from '../../../protocol.js'
import { rebuildHostFacts } from '../../../inventory/host-facts-schema.js'
import { systemClock, type Clock } from '../../../core/clock.js'
import {
  StoreOpenError,
  type BatchOutcome,
  type CommandFilter,
  type EventFilter,
  type FleetStore,
  type HostDetail,
} from '../fleet-store.js'
import type { RolloutStore } from '../../rollouts/store.js'
import { json, normaliseRow, toEvent, toHost } from '../mappers.js'
import { BatchWriter, instantOf } from './batches.js'
import { PostgresCommands } from './commands.js'
import { inTransaction, openPool, redact, type PgContext } from './connection.js'
import { CommandListener } from './listener.js'
import { Replicas } from './replicas.js'
import { PostgresRollouts } from './rollouts.js'
import { migrate } from './schema.js'

export { redact } from './connection.js'

export interface PostgresStoreOptions {
  url: string
  password?: string | null
  poolSize: number
  /** a heartbeat row is written this often; a replica silent for three beats is taken as dead */
  heartbeatSeconds: number
  log: Logger
  now?: Clock
}

export class PostgresFleetStore implements FleetStore {
  readonly kind = 'postgres'
  readonly replicaId = randomUUID()
  private readonly ctx: PgContext
  private readonly created = new EventEmitter()
  private readonly replicas: Replicas
  private readonly listener: CommandListener
  private readonly batches: BatchWriter
  private readonly cmds: PostgresCommands
  private closed = false
  readonly rollouts: RolloutStore

  private constructor(opts: PostgresStoreOptions) {
    const now = opts.now ?? systemClock
    const pool = openPool(opts, opts.log)
    this.ctx = {
      pool,
      replicaId: this.replicaId,
      log: opts.log,
      now,
      stamp: () => now().toISOString(),
      transaction: (work) => inTransaction(pool, work),
    }
    this.replicas = new Replicas(this.ctx, opts.heartbeatSeconds)
    this.batches = new BatchWriter(this.ctx)
    this.cmds = new PostgresCommands(this.ctx)
    this.listener = new CommandListener(
      opts,
      opts.log,
      (hostId) => this.created.emit('created', hostId),
      () => this.hostsWithPendingCommands(),
    )
    this.rollouts = new PostgresRollouts({
      pool,
      transaction: this.ctx.transaction,
      insertCommand: (c, hostId, action, args) => this.cmds.insert(c, hostId, action, args),
      stamp: this.ctx.stamp,
      replicaId: this.replicaId,
    })
  }

  /** Connects, migrates (or refuses a newer schema), registers this replica and starts listening. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresFleetStore> {
    const store = new PostgresFleetStore(opts)
    try {
      await migrate(store.ctx.pool, redact(opts.url), opts.log)
      await store.replicas.heartbeat()
      await store.listener.listen()
    } catch (err) {
      await store.ctx.pool.end().catch(() => {})
      await store.listener.close()
      if (err instanceof StoreOpenError) throw err
      throw new StoreOpenError(`cannot open the PostgreSQL fleet store: ${(err as Error).message}`)
    }
    store.replicas.start()
    return store
  }

  async recordHello(hello: Hello): Promise<void> {
    this.replicas.mine.add(hello.hostId)
    const f = hello.facts as Record<string, unknown>
    await this.ctx.pool.query(
      `INSERT INTO hosts
         (host_id, connected, replica, last_seen, version, actions, gpu, disk, images, labels, peers, host)
       VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (host_id) DO UPDATE SET connected = true, replica = $2, last_seen = $3, version = $4,
         actions = $5, gpu = coalesce($6, hosts.gpu), disk = coalesce($7, hosts.disk),
         images = coalesce($8, hosts.images), labels = $9, peers = $10, host = $11`,
      [
        hello.hostId,
        this.ctx.replicaId,
        this.ctx.stamp(),
        hello.version,
        JSON.stringify(hello.actions),
        json(f.gpu),
        json(f.disk),
        json(f.images),
        JSON.stringify(hello.labels),
        // every hello says it anew: a host that stopped serving is no longer named
        json(hello.facts.peers),
        json(rebuildHostFacts(hello.facts.host)),
      ],
    )
  }

  async recordSnapshot(s: SnapshotMessage): Promise<void> {
    const now = this.ctx.now()
    const pruneAt = s.lastPrune ? instantOf(s.lastPrune.ts, now) : null
    const prewarmAt = s.lastPrewarm ? instantOf(s.lastPrewarm.ts, now) : null
    // A job record replaces the stored one only when it is not older (a snapshot may know only an older one).
    await this.ctx.pool.query(
      `UPDATE hosts SET last_seen = $2, gpu = $3, disk = $4, images = $5,
         local_images = coalesce($6, local_images), labels = coalesce($7, labels),
         host = coalesce($12, host),
         last_prune = CASE WHEN $8::text IS NOT NULL AND (last_prune_at IS NULL OR last_prune_at <= $9)
           THEN $8 ELSE last_prune END,
         last_prune_at = CASE WHEN $8::text IS NOT NULL AND (last_prune_at IS NULL OR last_prune_at <= $9)
           THEN $9 ELSE last_prune_at END,
         last_prewarm = CASE WHEN $10::text IS NOT NULL AND (last_prewarm_at IS NULL OR last_prewarm_at <= $11)
           THEN $10 ELSE last_prewarm END,
         last_prewarm_at = CASE WHEN $10::text IS NOT NULL AND (last_prewarm_at IS NULL OR last_prewarm_at <= $11)
           THEN $11 ELSE last_prewarm_at END
       WHERE host_id = $1`,
      [
        s.hostId,
        now.toISOString(),
        json(s.gpu),
        json(s.disk),
        json(s.images),
        json(s.localImages),
        json(s.labels),
        json(s.lastPrune),
        pruneAt,
        json(s.lastPrewarm),
        prewarmAt,
        json(s.host ? rebuildHostFacts(s.host) : null),
      ],
    )
  }

  recordBatch(hostId: string, events: EventMessage[], results: CommandResult[]): Promise<BatchOutcome> {
    return this.batches.recordBatch(hostId, events, results)
  }

  async recordDisconnect(hostId: string): Promise<void> {
    this.replicas.mine.delete(hostId)
    await this.ctx.pool.query(
      'UPDATE hosts SET connected = false, replica = NULL, last_seen = $1 WHERE host_id = $2 AND replica = $3',
      [this.ctx.stamp(), hostId, this.ctx.replicaId],
    )
  }

  async host(hostId: string): Promise<HostDetail | null> {
    const { rows } = await this.ctx.pool.query('SELECT * FROM hosts WHERE host_id = $1', [hostId])
    return rows.length ? toHost(normaliseRow(rows[0])) : null
  }

  async hosts(): Promise<HostDetail[]> {
    const { rows } = await this.ctx.pool.query('SELECT * FROM hosts ORDER BY host_id COLLATE "C"')
    return rows.map((r) => toHost(normaliseRow(r)))
  }

  async hostCount(): Promise<number> {
    return (await this.ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM hosts')).rows[0].n
  }

  async events(filter: EventFilter) {
    const where = ['seq > $1']
    const params: unknown[] = [filter.after ?? 0]
    if (filter.hostId) where.push(`host_id = $${params.push(filter.hostId)}`)
    if (filter.type) where.push(`type = $${params.push(filter.type)}`)
    const { rows } = await this.ctx.pool.query(
      `SELECT seq, id, host_id, type, ts, data FROM events WHERE ${where.join(' AND ')}
       ORDER BY seq LIMIT $${params.push(filter.limit)}`,
      params,
    )
    return rows.map((r) => toEvent(normaliseRow(r)))
  }

  async eventCount(): Promise<number> {
    return (await this.ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0].n
  }

  createCommand(hostId: string, action: CommandAction, args: Record<string, unknown>): Promise<string> {
    return this.cmds.insert(this.ctx.pool, hostId, action, args)
  }

  createCommandUnlessWaiting(hostId: string, action: CommandAction, args: Record<string, unknown>) {
    return this.cmds.createUnlessWaiting(hostId, action, args)
  }

  command(commandId: string) {
    return this.cmds.one(commandId)
  }

  commands(filter: CommandFilter) {
    return this.cmds.list(filter)
  }

  pendingCommands(hostId: string) {
    return this.cmds.pending(hostId)
  }

  hostsWithPendingCommands() {
    return this.cmds.hostsWithPending()
  }

  markRunning(commandId: string): Promise<void> {
    return this.batches.markRunning(commandId)
  }

  expireCommands(timeoutSeconds: number) {
    return this.cmds.expire(timeoutSeconds)
  }

  commandCounts() {
    return this.cmds.counts()
  }

  holdLease(name: string, seconds: number): Promise<boolean> {
    return this.replicas.holdLease(name, seconds)
  }

  onCommandCreated(listener: (hostId: string) => void): void {
    this.created.on('created', listener)
  }

  /** Leaves the replica set: its hosts are marked disconnected now rather than after three missed beats. */
  async close(): Promise<void> {
    if (this.closed) return
    await this.batches.close()
    this.closed = true
    this.replicas.stop()
    await this.listener.close()
    await this.replicas.leave()
    await this.ctx.pool.end()
  }
}

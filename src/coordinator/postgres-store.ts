// The FleetStore interface over PostgreSQL, shared by any number of coordinator replicas. Events are
// unique by id in the table, so a resend through any replica is dropped; commands live in a table
// and a NOTIFY on creation tells every replica, which sends it if the host is connected there. Each
// replica beats a heartbeat row; the survivors mark a silent one's hosts disconnected.
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import pg from 'pg'
import type { Logger } from 'pino'
import type { CommandAction, CommandResult, EventMessage, Hello, SnapshotMessage } from '../protocol.js'
import type { StoredPeerServing } from './peer-advert.js'
import { rebuildHostFacts, type HostFacts } from '../inventory/host-facts-schema.js'
import { systemClock, type Clock } from '../core/clock.js'
import { backoffDelay } from '../backoff.js'
import {
  checkSchemaVersion,
  StoreOpenError,
  type BatchOutcome,
  type CommandFilter,
  type CommandRecord,
  type CommandStatus,
  type EventFilter,
  type FleetStore,
  type HostDetail,
} from './fleet-store.js'
import { PostgresRollouts } from './postgres-rollouts.js'
import { POSTGRES_MIGRATIONS } from './postgres-schema.js'
import type { RolloutStore } from './rollout-store.js'

/** the NOTIFY channel a new command's host id is sent on */
const COMMANDS_CHANNEL = 'gpuhost_commands'
/** pg_advisory_lock key held while migrating, so two replicas starting at once migrate once */
const MIGRATION_LOCK = 0x67707568 // "gpuh"
const CONNECT_TIMEOUT_MS = 10_000

export interface PostgresStoreOptions {
  url: string
  password?: string | null
  poolSize: number
  /** a heartbeat row is written this often; a replica silent for three beats is taken as dead */
  heartbeatSeconds: number
  log: Logger
  now?: Clock
}

interface QueuedBatch {
  hostId: string
  events: EventMessage[]
  results: CommandResult[]
  resolve: (v: BatchOutcome) => void
  reject: (e: unknown) => void
}

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v))
const parse = <T>(v: unknown): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : null)

/** the instant a job record's `ts` names; an unreadable one counts as now, as the SQLite store does */
function instantOf(ts: unknown, now: Date): Date {
  const at = typeof ts === 'string' ? Date.parse(ts) : NaN
  return Number.isNaN(at) ? now : new Date(at)
}

export class PostgresFleetStore implements FleetStore {
  readonly kind = 'postgres'
  readonly replicaId = randomUUID()
  /** hosts connected to this replica now (hello recorded, no disconnect yet) */
  private readonly mine = new Set<string>()
  /** whether this replica has written its heartbeat row once */
  private beaten = false
  private readonly pool: pg.Pool
  private readonly now: Clock
  private readonly created = new EventEmitter()
  private listener: pg.Client | null = null
  private listenAttempt = 0
  private heartbeatTimer: NodeJS.Timeout | null = null
  private listenTimer: NodeJS.Timeout | null = null
  private queue: QueuedBatch[] = []
  private running: { commandId: string; resolve: () => void; reject: (e: unknown) => void }[] = []
  private flushing = false
  private closed = false
  readonly rollouts: RolloutStore

  private constructor(private readonly opts: PostgresStoreOptions) {
    this.now = opts.now ?? systemClock
    this.pool = new pg.Pool({
      connectionString: opts.url,
      ...(opts.password ? { password: opts.password } : {}),
      max: opts.poolSize,
      // A database that does not answer fails the call, and the start, instead of hanging it.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'gpuhost-coordinator',
    })
    // An idle client that loses its server emits here; the pool drops it and the next query opens another.
    this.pool.on('error', (err) => opts.log.warn({ err: err.message }, 'a PostgreSQL connection failed'))
    this.rollouts = new PostgresRollouts({
      pool: this.pool,
      transaction: (work) => this.transaction(work),
      insertCommand: (c, hostId, action, args) => this.insertCommand(c, hostId, action, args),
      stamp: () => this.stamp(),
      replicaId: this.replicaId,
    })
  }

  /** Connects, migrates (or refuses a newer schema), registers this replica and starts listening. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresFleetStore> {
    const store = new PostgresFleetStore(opts)
    try {
      await store.migrate()
      await store.heartbeat()
      await store.listen()
    } catch (err) {
      await store.pool.end().catch(() => {})
      store.listener?.end().catch(() => {})
      if (err instanceof StoreOpenError) throw err
      throw new StoreOpenError(`cannot open the PostgreSQL fleet store: ${(err as Error).message}`)
    }
    store.heartbeatTimer = setInterval(
      () => void store.heartbeat().catch(store.warn('heartbeat')),
      opts.heartbeatSeconds * 1000,
    )
    store.heartbeatTimer.unref()
    return store
  }

  private warn(what: string) {
    return (err: Error) => this.opts.log.warn({ err: err.message }, `fleet store ${what} failed`)
  }

  private stamp(): string {
    return this.now().toISOString()
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect()
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
      await client.query(`CREATE TABLE IF NOT EXISTS gpuhost_schema (
        version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
      const { rows } = await client.query<{ v: number }>(
        'SELECT coalesce(max(version), 0)::int AS v FROM gpuhost_schema',
      )
      const found = rows[0].v
      checkSchemaVersion(found, POSTGRES_MIGRATIONS.length, redact(this.opts.url))
      for (let v = found; v < POSTGRES_MIGRATIONS.length; v++) {
        await client.query('BEGIN')
        try {
          await client.query(POSTGRES_MIGRATIONS[v])
          await client.query('INSERT INTO gpuhost_schema (version) VALUES ($1)', [v + 1])
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK')
          throw err
        }
        this.opts.log.info({ version: v + 1 }, 'fleet database schema migrated')
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {})
      client.release()
    }
  }

  /** Beats this replica's row; marks the hosts of replicas silent for three beats disconnected. */
  private async heartbeat(): Promise<void> {
    const deadAfter = this.opts.heartbeatSeconds * 3
    const beat = await this.pool.query<{ inserted: boolean }>(
      `INSERT INTO replicas (id, started_at, heartbeat_at) VALUES ($1, now(), now())
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now() RETURNING (xmax = 0) AS inserted`,
      [this.replicaId],
    )
    // The row was gone: another replica took this one for dead (the database was away longer than
    // three beats) and marked its hosts disconnected, though their connections here are alive.
    if (this.beaten && beat.rows[0]?.inserted && this.mine.size > 0) {
      const { rowCount } = await this.pool.query(
        'UPDATE hosts SET connected = true, replica = $1 WHERE host_id = ANY($2)',
        [this.replicaId, [...this.mine]],
      )
      this.opts.log.warn({ hosts: rowCount }, 'this replica was taken for dead: its connected hosts are marked again')
    }
    this.beaten = true
    const { rows } = await this.pool.query<{ id: string }>(
      'DELETE FROM replicas WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING id',
      [deadAfter],
    )
    if (!rows.length) return
    const dead = rows.map((r) => r.id)
    // Commands sent on a dead replica's connections go back to pending: they are sent again when
    // the host says hello to a live replica (the agent runs each command id once), or expire.
    const { rowCount } = await this.pool.query(
      `WITH gone AS (
         UPDATE hosts SET connected = false, replica = NULL WHERE replica = ANY($1) RETURNING host_id
       )
       UPDATE commands SET status = 'pending', updated_at = $2
       WHERE status = 'running' AND host_id IN (SELECT host_id FROM gone)`,
      [dead, this.stamp()],
    )
    this.opts.log.warn({ replicas: dead, commandsToResend: rowCount }, 'coordinator replicas stopped beating')
  }

  /** One client LISTENs for new commands; when it drops, it reconnects and catches up on what it missed. */
  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.url,
      ...(this.opts.password ? { password: this.opts.password } : {}),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'gpuhost-coordinator-listen',
    })
    client.on('notification', (n) => {
      if (n.channel === COMMANDS_CHANNEL && n.payload) this.created.emit('created', n.payload)
    })
    client.on('error', (err) => {
      this.opts.log.warn({ err: err.message }, 'the command listener lost PostgreSQL; reconnecting')
      this.relisten(client)
    })
    client.on('end', () => this.relisten(client))
    await client.connect()
    await client.query(`LISTEN ${COMMANDS_CHANNEL}`)
    this.listener = client
    this.listenAttempt = 0
  }

  private relisten(client: pg.Client): void {
    if (this.closed || this.listener !== client) return
    this.listener = null
    client.end().catch(() => {})
    const delay = backoffDelay(this.listenAttempt++, { baseMs: 500, maxMs: 10_000 })
    this.listenTimer = setTimeout(() => {
      this.listen()
        .then(() => this.hostsWithPendingCommands())
        .then((hosts) => hosts.forEach((h) => this.created.emit('created', h)))
        .catch((err: Error) => {
          this.opts.log.warn({ err: err.message }, 'cannot listen for commands yet')
          this.listenAttempt++
          if (!this.closed && !this.listener) this.relisten(client)
        })
    }, delay)
    this.listenTimer.unref()
  }

  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    let value: T
    try {
      await client.query('BEGIN')
      value = await work(client)
      await client.query('COMMIT')
    } catch (err) {
      // A client whose ROLLBACK failed is in an unknown state: the pool drops it instead of reusing it.
      const broken = await client.query('ROLLBACK').then(
        () => undefined,
        (e: Error) => e,
      )
      client.release(broken)
      throw err
    }
    client.release()
    return value
  }

  async recordHello(hello: Hello): Promise<void> {
    this.mine.add(hello.hostId)
    const f = hello.facts as Record<string, unknown>
    await this.pool.query(
      `INSERT INTO hosts
         (host_id, connected, replica, last_seen, version, actions, gpu, disk, images, labels, peers, host)
       VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (host_id) DO UPDATE SET connected = true, replica = $2, last_seen = $3, version = $4,
         actions = $5, gpu = coalesce($6, hosts.gpu), disk = coalesce($7, hosts.disk),
         images = coalesce($8, hosts.images), labels = $9, peers = $10, host = $11`,
      [
        hello.hostId,
        this.replicaId,
        this.stamp(),
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
    const now = this.now()
    const pruneAt = s.lastPrune ? instantOf(s.lastPrune.ts, now) : null
    const prewarmAt = s.lastPrewarm ? instantOf(s.lastPrewarm.ts, now) : null
    // A job record replaces the stored one only when it is not older (a snapshot may know only an older one).
    await this.pool.query(
      `UPDATE hosts SET last_seen = $2, gpu = $3, disk = $4, images = $5,
         local_images = coalesce($6, local_images), labels = coalesce($7, labels),
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
      ],
    )
  }

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
          const outcomes = await this.transaction((c) => this.storeBatches(c, batch))
          batch.forEach((b, i) => b.resolve(outcomes[i]))
        } catch {
          for (const b of batch) {
            await this.transaction((c) => this.storeBatches(c, [b])).then(
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
    const receivedAt = this.stamp()
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
    const now = this.now()
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

  async recordDisconnect(hostId: string): Promise<void> {
    this.mine.delete(hostId)
    await this.pool.query(
      'UPDATE hosts SET connected = false, replica = NULL, last_seen = $1 WHERE host_id = $2 AND replica = $3',
      [this.stamp(), hostId, this.replicaId],
    )
  }

  async host(hostId: string): Promise<HostDetail | null> {
    const { rows } = await this.pool.query('SELECT * FROM hosts WHERE host_id = $1', [hostId])
    return rows.length ? toHost(rows[0]) : null
  }

  async hosts(): Promise<HostDetail[]> {
    const { rows } = await this.pool.query('SELECT * FROM hosts ORDER BY host_id COLLATE "C"')
    return rows.map(toHost)
  }

  async hostCount(): Promise<number> {
    return (await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM hosts')).rows[0].n
  }

  async events(filter: EventFilter) {
    const where = ['seq > $1']
    const params: unknown[] = [filter.after ?? 0]
    if (filter.hostId) where.push(`host_id = $${params.push(filter.hostId)}`)
    if (filter.type) where.push(`type = $${params.push(filter.type)}`)
    const { rows } = await this.pool.query(
      `SELECT seq, id, host_id, type, ts, data FROM events WHERE ${where.join(' AND ')}
       ORDER BY seq LIMIT $${params.push(filter.limit)}`,
      params,
    )
    return rows.map((r) => ({
      seq: Number(r.seq),
      id: r.id as string,
      hostId: r.host_id as string,
      type: r.type as string,
      ts: r.ts as string,
      data: parse<EventMessage['data']>(r.data)!,
    }))
  }

  async eventCount(): Promise<number> {
    return (await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0].n
  }

  async createCommand(hostId: string, action: CommandAction, args: Record<string, unknown>): Promise<string> {
    return this.insertCommand(this.pool, hostId, action, args)
  }

  /** Inserts a pending command and notifies every replica in one statement: the NOTIFY goes out on commit. */
  private async insertCommand(
    c: pg.Pool | pg.PoolClient,
    hostId: string,
    action: CommandAction,
    args: Record<string, unknown>,
  ): Promise<string> {
    const commandId = randomUUID()
    const at = this.stamp()
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

  async createCommandUnlessWaiting(hostId: string, action: CommandAction, args: Record<string, unknown>) {
    return this.transaction(async (c) => {
      // Two replicas handling the same alert at once: the second waits here, then sees the first's command.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gpuhost-command:${hostId}:${action}`])
      const { rows } = await c.query<{ command_id: string }>(
        `SELECT command_id FROM commands WHERE host_id = $1 AND action = $2 AND status IN ('pending', 'running')
         ORDER BY seq LIMIT 1`,
        [hostId, action],
      )
      if (rows.length) return { waiting: rows[0].command_id }
      return { commandId: await this.insertCommand(c, hostId, action, args) }
    })
  }

  async command(commandId: string): Promise<CommandRecord | null> {
    const { rows } = await this.pool.query('SELECT * FROM commands WHERE command_id = $1', [commandId])
    return rows.length ? toCommand(rows[0]) : null
  }

  async commands(filter: CommandFilter): Promise<CommandRecord[]> {
    const where = ['true']
    const params: unknown[] = []
    if (filter.hostId) where.push(`host_id = $${params.push(filter.hostId)}`)
    if (filter.action) where.push(`action = $${params.push(filter.action)}`)
    if (filter.status) where.push(`status = $${params.push(filter.status)}`)
    const { rows } = await this.pool.query(
      `SELECT * FROM (
         SELECT * FROM commands WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT $${params.push(filter.limit)}
       ) c ORDER BY seq`,
      params,
    )
    return rows.map(toCommand)
  }

  async pendingCommands(hostId: string): Promise<CommandRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM commands WHERE host_id = $1 AND status IN ('pending', 'running') ORDER BY created_at, seq`,
      [hostId],
    )
    return rows.map(toCommand)
  }

  async hostsWithPendingCommands(): Promise<string[]> {
    const { rows } = await this.pool.query<{ host_id: string }>(
      "SELECT DISTINCT host_id FROM commands WHERE status IN ('pending', 'running')",
    )
    return rows.map((r) => r.host_id)
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
        this.transaction(async (c) => {
          await c.query('SET LOCAL synchronous_commit = off')
          await c.query(
            `UPDATE commands SET status = 'running', updated_at = $2
             WHERE command_id = ANY($1) AND status IN ('pending', 'running')`,
            [marks.map((m) => m.commandId), this.stamp()],
          )
        }).then(
          () => marks.forEach((m) => m.resolve()),
          (err) => marks.forEach((m) => m.reject(err)),
        )
      })
    })
  }

  async expireCommands(timeoutSeconds: number): Promise<number> {
    const cutoff = new Date(this.now().getTime() - timeoutSeconds * 1000).toISOString()
    const { rowCount } = await this.pool.query(
      `UPDATE commands SET status = 'failed', error = $1, updated_at = $2
       WHERE status IN ('pending', 'running') AND created_at < $3`,
      [`no result within ${timeoutSeconds} s`, this.stamp(), cutoff],
    )
    return rowCount ?? 0
  }

  async commandCounts() {
    const { rows } = await this.pool.query<{ action: string; status: string; n: number }>(
      'SELECT action, status, count(*)::int AS n FROM commands GROUP BY action, status',
    )
    return rows
  }

  async holdLease(name: string, seconds: number): Promise<boolean> {
    const { rows } = await this.pool.query(
      `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = excluded.expires_at
         WHERE leases.holder = $2 OR leases.expires_at < now()
       RETURNING holder`,
      [name, this.replicaId, seconds],
    )
    return rows.length > 0
  }

  onCommandCreated(listener: (hostId: string) => void): void {
    this.created.on('created', listener)
  }

  /** Leaves the replica set: its hosts are marked disconnected now rather than after three missed beats. */
  async close(): Promise<void> {
    if (this.closed) return
    while (this.flushing || this.queue.length || this.running.length) {
      if (!this.flushing) void this.flushBatches()
      await new Promise((r) => setTimeout(r, 10))
    }
    this.closed = true
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    if (this.listenTimer) clearTimeout(this.listenTimer)
    const listener = this.listener
    this.listener = null
    await listener?.end().catch(() => {})
    // Leases are handed back at once: another replica takes over rollouts without waiting them out.
    await this.pool.query('DELETE FROM leases WHERE holder = $1', [this.replicaId]).catch(this.warn('leaving'))
    await this.pool
      .query(
        `WITH gone AS (DELETE FROM replicas WHERE id = $1)
         UPDATE hosts SET connected = false, replica = NULL, last_seen = $2 WHERE replica = $1`,
        [this.replicaId, this.stamp()],
      )
      .catch(this.warn('leaving the replica set'))
    await this.pool.end()
  }
}

/** the URL without its password, for messages and --print-config */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    // pg also reads a password from the query string
    for (const key of ['password', 'sslpassword']) if (u.searchParams.has(key)) u.searchParams.set(key, '***')
    return u.toString()
  } catch {
    return 'the configured store.url'
  }
}

function toHost(r: Record<string, unknown>): HostDetail {
  return {
    hostId: r.host_id as string,
    connected: r.connected === true,
    lastSeen: (r.last_seen as string | null) ?? null,
    version: (r.version as string | null) ?? null,
    gpu: parse(r.gpu),
    disk: parse(r.disk),
    images: parse(r.images),
    lastPrune: parse(r.last_prune),
    lastPrewarm: parse(r.last_prewarm),
    labels: parse<Record<string, string>>(r.labels) ?? {},
    peers: parse<StoredPeerServing>(r.peers),
    host: parse<HostFacts>(r.host),
    actions: parse<string[]>(r.actions) ?? [],
    localImages: parse(r.local_images),
  }
}

function toCommand(r: Record<string, unknown>): CommandRecord {
  return {
    commandId: r.command_id as string,
    hostId: r.host_id as string,
    action: r.action as CommandAction,
    args: parse(r.args) ?? {},
    status: r.status as CommandStatus,
    result: parse(r.result),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
  }
}

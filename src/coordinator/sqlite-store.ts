// The FleetStore interface over SQLite in this one process: writes go through SqliteFleet's group
// commit (one transaction and one fsync per turn of the event loop), reads are immediate, and the
// command listeners are this process's own, as no other replica shares the file.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { CommandAction, CommandResult, EventMessage, Hello, SnapshotMessage } from '../protocol.js'
import type { Clock } from '../core/clock.js'
import type { BatchOutcome, CommandFilter, EventFilter, FleetStore } from './fleet-store.js'
import type { RolloutSpec, RolloutState } from './rollout-plan.js'
import type { CoordinatorEvent, Rollout, RolloutChanges, RolloutStore } from './rollout-store.js'
import { SqliteFleet } from './store.js'

export class SqliteFleetStore implements FleetStore {
  readonly kind = 'sqlite'
  readonly replicaId = randomUUID()
  /** the synchronous database, for what only SQLite offers (its group-commit write) */
  readonly db: SqliteFleet
  private readonly created = new EventEmitter()
  readonly rollouts: RolloutStore

  constructor(dataDir: string, now?: Clock) {
    this.db = new SqliteFleet(dataDir, now)
    this.rollouts = new SqliteRollouts(this.db, (hostId) => this.created.emit('created', hostId))
  }

  recordHello(hello: Hello): Promise<void> {
    return this.db.write(() => this.db.recordHello(hello))
  }

  recordSnapshot(snapshot: SnapshotMessage): Promise<void> {
    return this.db.write(() => this.db.recordSnapshot(snapshot))
  }

  recordBatch(hostId: string, events: EventMessage[], results: CommandResult[]): Promise<BatchOutcome> {
    return this.db.write(() => {
      const added = events.length ? this.db.insertEvents(events) : 0
      const unknownResults = results
        .filter((r) => !this.db.finishCommand(r.hostId, r.commandId, r.ok, r.result, r.error))
        .map((r) => r.commandId)
      this.db.touch(hostId)
      return { added, unknownResults }
    })
  }

  recordDisconnect(hostId: string): Promise<void> {
    return this.db.write(() => this.db.recordDisconnect(hostId))
  }

  async host(hostId: string) {
    return this.db.host(hostId)
  }

  async hosts() {
    return this.db.hosts()
  }

  async hostCount() {
    return this.db.hostCount()
  }

  async events(filter: EventFilter) {
    return this.db.events(filter).events
  }

  async eventCount() {
    return this.db.eventCount()
  }

  async createCommand(hostId: string, action: CommandAction, args: Record<string, unknown>): Promise<string> {
    const commandId = await this.db.write(() => this.db.createCommand(hostId, action, args))
    this.created.emit('created', hostId)
    return commandId
  }

  async createCommandUnlessWaiting(hostId: string, action: CommandAction, args: Record<string, unknown>) {
    const outcome = await this.db.write(() => {
      const waiting = this.db.pendingCommands(hostId).find((c) => c.action === action)
      return waiting ? { waiting: waiting.commandId } : { commandId: this.db.createCommand(hostId, action, args) }
    })
    if ('commandId' in outcome) this.created.emit('created', hostId)
    return outcome
  }

  async command(commandId: string) {
    return this.db.command(commandId)
  }

  async commands(filter: CommandFilter) {
    return this.db.commands(filter)
  }

  async pendingCommands(hostId: string) {
    return this.db.pendingCommands(hostId)
  }

  async hostsWithPendingCommands() {
    return this.db.hostsWithPendingCommands()
  }

  markRunning(commandId: string): Promise<void> {
    return this.db.write(() => this.db.markRunning(commandId))
  }

  expireCommands(timeoutSeconds: number): Promise<number> {
    return this.db.write(() => this.db.expireCommands(timeoutSeconds))
  }

  async commandCounts() {
    return this.db.commandCounts()
  }

  /** one process: it always holds every lease */
  async holdLease(): Promise<boolean> {
    return true
  }

  onCommandCreated(listener: (hostId: string) => void): void {
    this.created.on('created', listener)
  }

  async close(): Promise<void> {
    this.db.close()
  }
}

/** RolloutStore over SqliteFleet: each write one group-committed write, events and commands included. */
class SqliteRollouts implements RolloutStore {
  constructor(
    private readonly db: SqliteFleet,
    private readonly commandCreated: (hostId: string) => void,
  ) {}

  private record(events: CoordinatorEvent[]): void {
    for (const e of events) this.db.recordCoordinatorEvent(e.type, e.hostId, e.data)
  }

  createRollout(id: string, spec: RolloutSpec, hostIds: string[], events: CoordinatorEvent[]): Promise<void> {
    return this.db.write(() => {
      this.db.rollouts.createRollout(id, spec, hostIds)
      this.record(events)
    })
  }

  async rollout(id: string) {
    return this.db.rollouts.rollout(id)
  }

  async rollouts(limit: number) {
    return this.db.rollouts.rollouts(limit)
  }

  async activeRolloutIds() {
    return this.db.rollouts.activeRolloutIds()
  }

  transitionRollout(
    id: string,
    from: RolloutState[],
    to: RolloutState,
    eventsOf: (r: Rollout) => CoordinatorEvent[],
  ): Promise<boolean | null> {
    return this.db.write(() => {
      const r = this.db.rollouts.rollout(id)
      if (!r) return null
      if (!from.includes(r.state)) return false
      this.db.rollouts.setRolloutState(id, to)
      this.record(eventsOf(this.db.rollouts.rollout(id)!))
      return true
    })
  }

  addRolloutHost(id: string, hostId: string): Promise<boolean> {
    return this.db.write(() => {
      if (this.db.rollouts.rollout(id)?.state !== 'running') return false
      return this.db.rollouts.addRolloutHost(id, hostId)
    })
  }

  async applyRolloutChanges(id: string, changes: RolloutChanges): Promise<boolean> {
    const started: string[] = []
    const applied = await this.db.write(() => {
      if (this.db.rollouts.rollout(id)?.state !== changes.expect) return false
      for (const h of changes.hosts) {
        const commandId = h.prewarm ? this.db.createCommand(h.hostId, 'prewarm', h.prewarm) : undefined
        if (commandId) started.push(h.hostId)
        this.db.rollouts.updateRolloutHost(id, h.hostId, { ...h.patch, ...(commandId ? { commandId } : {}) })
      }
      if (changes.finish) this.db.rollouts.setRolloutState(id, changes.finish)
      this.record(changes.events)
      return true
    })
    for (const hostId of started) this.commandCreated(hostId)
    return applied
  }

  async rolloutCounts() {
    return this.db.rollouts.rolloutCounts()
  }

  async rolloutHostCounts() {
    return this.db.rollouts.rolloutHostCounts()
  }

  async rolloutBytesPulled() {
    return this.db.rollouts.rolloutBytesPulled()
  }

  async rolloutBytesBySource() {
    return this.db.rollouts.rolloutBytesBySource()
  }
}

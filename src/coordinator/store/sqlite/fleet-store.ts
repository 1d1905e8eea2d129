// The FleetStore interface over SQLite in this one process: writes go through SqliteFleet's group
// commit (one transaction and one fsync per turn of the event loop), reads are immediate, and the
// command listeners are this process's own, as no other replica shares the file.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { CommandAction, CommandResult, EventMessage, Hello, SnapshotMessage } from '../../../protocol.js'
import type { Clock } from '../../../core/clock.js'
import type { BatchOutcome, CommandFilter, EventFilter, FleetStore } from '../fleet-store.js'
import type { RolloutStore } from '../../rollouts/store.js'
import { SqliteFleet } from './engine.js'
import { SqliteRollouts } from './rollouts.js'

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

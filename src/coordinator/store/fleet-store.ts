// The coordinator's durable fleet state behind one asynchronous interface, with two engines: SQLite
// in one process (the default, nothing to install) and PostgreSQL shared by any number of replicas.
// Every write resolves once it is durable: the hub acks an agent's frame, and the API answers, only then.
import type { CommandAction, CommandResult, EventMessage, Hello, SnapshotMessage } from '../../protocol.js'
import type { RolloutStore } from '../rollouts/store.js'
import type { CommandRecord, EventRecord, HostDetail } from './records.js'

export type { CommandRecord, CommandStatus, EventRecord, HostDetail, HostRecord } from './records.js'

export interface EventFilter {
  hostId?: string
  type?: string
  /** events stored after this sequence number (a page's last) */
  after?: number
  limit: number
}

export interface CommandFilter {
  hostId?: string
  action?: string
  status?: string
  limit: number
}

/** what one flush of a connection stored */
export interface BatchOutcome {
  /** events new to the store; the rest were duplicates by id (resent, or stored through another replica) */
  added: number
  /** command ids of results that match no command of that host */
  unknownResults: string[]
}

export interface FleetStore {
  readonly kind: 'sqlite' | 'postgres'
  /** this process's id among the replicas sharing the store */
  readonly replicaId: string

  /** the host is connected to this replica, with the facts of its hello */
  recordHello(hello: Hello): Promise<void>
  recordSnapshot(snapshot: SnapshotMessage): Promise<void>
  /** events (each id once across all replicas) and command results of one host, in one transaction */
  recordBatch(hostId: string, events: EventMessage[], results: CommandResult[]): Promise<BatchOutcome>
  /** the host left this replica; a newer connection to another replica is left as it is */
  recordDisconnect(hostId: string): Promise<void>

  host(hostId: string): Promise<HostDetail | null>
  hosts(): Promise<HostDetail[]>
  hostCount(): Promise<number>
  events(filter: EventFilter): Promise<(EventRecord & { seq: number })[]>
  eventCount(): Promise<number>

  /** a new pending command; every replica's command listeners hear of its host once it is stored */
  createCommand(hostId: string, action: CommandAction, args: Record<string, unknown>): Promise<string>
  /**
   * A new command unless one of the same action for that host has no result yet (then that one's
   * id comes back as `waiting`); decided atomically across replicas.
   */
  createCommandUnlessWaiting(
    hostId: string,
    action: CommandAction,
    args: Record<string, unknown>,
  ): Promise<{ commandId: string } | { waiting: string }>
  command(commandId: string): Promise<CommandRecord | null>
  /** the newest `limit` matching commands, oldest first */
  commands(filter: CommandFilter): Promise<CommandRecord[]>
  /** commands of a host without a result yet, oldest first: pending, or sent and maybe lost */
  pendingCommands(hostId: string): Promise<CommandRecord[]>
  /** hosts that have commands without a result: what a replica checks against its connections */
  hostsWithPendingCommands(): Promise<string[]>
  markRunning(commandId: string): Promise<void>
  /** fails commands still pending or running after `timeoutSeconds`; returns how many */
  expireCommands(timeoutSeconds: number): Promise<number>
  commandCounts(): Promise<{ action: string; status: string; n: number }[]>

  /** rollouts and their hosts */
  readonly rollouts: RolloutStore
  /**
   * Takes or renews the lease `name` for `seconds`: true while this replica holds it. One replica at
   * a time drives rollouts; when it dies, another takes the lease once it has run out.
   */
  holdLease(name: string, seconds: number): Promise<boolean>

  /** `listener(hostId)` runs when a command for that host was created through any replica */
  onCommandCreated(listener: (hostId: string) => void): void
  close(): Promise<void>
}

/** The store refused to open: a schema it does not know, or a database it cannot reach. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StoreOpenError'
  }
}

/** Refuses a schema newer than this build's migrations: an older replica must not write to it. */
export function checkSchemaVersion(found: number, known: number, where: string): void {
  if (found > known) {
    throw new StoreOpenError(
      `the fleet database at ${where} has schema version ${found}, newer than this coordinator knows (${known}): ` +
        'upgrade this coordinator to the version the other replicas run',
    )
  }
}

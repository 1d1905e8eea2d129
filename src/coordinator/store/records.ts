// The fleet's records as every store gives them (SQLite and PostgreSQL alike), apart from the
// stores so that the FleetStore interface and the engines that implement it share them without
// importing each other.
import type { CommandAction, EventMessage, ReportedImage } from '../../protocol.js'
import type { HostFacts } from '../../inventory/host-facts-schema.js'
import type { StoredPeerServing } from '../peer-advert.js'

/** the host id the coordinator's own events (rollout.*) are stored under when they concern no one host */
export const COORDINATOR_HOST = 'coordinator'

export type CommandStatus = 'pending' | 'running' | 'succeeded' | 'failed'

export interface HostRecord {
  hostId: string
  connected: boolean
  lastSeen: string | null
  version: string | null
  gpu: Record<string, unknown> | null
  disk: Record<string, unknown> | null
  images: Record<string, unknown> | null
  lastPrune: Record<string, unknown> | null
  lastPrewarm: Record<string, unknown> | null
  /** the host's labels, as its agent last sent them */
  labels: Record<string, string>
  /** where other hosts fetch images from this one (its hello's `peers` fact); null: it does not serve peers */
  peers: StoredPeerServing | null
  /** OS, kernel, CPU, memory, system and block devices from its last hello; null: its agent sent none */
  host: HostFacts | null
}

export interface HostDetail extends HostRecord {
  actions: string[]
  localImages: ReportedImage[] | null
}

/**
 * an event as received: `data` has the shape eventPayloadSchemas gives its type, but agents of other
 * versions may differ
 */
export interface EventRecord {
  id: string
  hostId: string
  type: string
  ts: string
  data: EventMessage['data']
}

export interface CommandRecord {
  commandId: string
  hostId: string
  action: CommandAction
  args: Record<string, unknown>
  status: CommandStatus
  result: unknown
  error: string | null
  createdAt: string
  updatedAt: string
}

/** A host as the API shows it: the record of INTERFACES.md, without the bulky local image list. */
export function publicHost(h: HostDetail): HostRecord {
  const { actions: _actions, localImages: _images, ...record } = h
  return record
}

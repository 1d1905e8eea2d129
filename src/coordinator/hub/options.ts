// What the agent hub is given.
import type { IncomingMessage } from 'node:http'
import type { Logger } from 'pino'
import type { AgentIdentity } from '../identity.js'
import type { FleetStore } from '../store/fleet-store.js'

export interface HubOptions {
  store: FleetStore
  log: Logger
  /** who the upgrade request's credential speaks for */
  authenticate: (req: IncomingMessage) => AgentIdentity
  maxFrameBytes: number
  pingIntervalSeconds: number
  commandTimeoutSeconds: number
  /** a host's hello was accepted and its pending commands sent */
  onHostConnected?: (hostId: string) => void
  /** command results were stored */
  onResultsStored?: () => void
  /** a snapshot with the host's (changed) image list was stored */
  onImagesReported?: (hostId: string) => void
}

/** what the hub counts, for the coordinator's metrics */
export interface HubCounters {
  eventsReceived: number
  eventsDuplicate: number
  framesRefused: number
  connectionsRefused: number
}

// Where rollouts are kept: the RolloutStore methods are the whole of what the driver and the API
// need, asynchronous, on every FleetStore engine; each write is one transaction with the commands
// and the coordinator's events it brings (SQLite's tables: store/sqlite/rollout-tables.ts).
import type { ImageOutcome, RolloutHostState, RolloutSpec, RolloutState } from './plan.js'

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

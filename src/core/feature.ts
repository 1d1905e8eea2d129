// The contract between the agent and its features: what a feature is given (AgentContext) and what
// it brings back (FeatureParts). src/agent/ builds the context and composes the features; a feature
// imports this, never the composition root.
import type { Logger } from 'pino'
import type { AgentConfig } from '../config.js'
import type { HttpServer } from '../http/server.js'
import type { StateGuard } from '../state/guard.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { WantedSet } from '../prewarm/wanted.js'
import type { PeerServeStats } from '../peers/metrics.js'
import type { ActionRegistry } from './actions.js'
import type { Clock } from './clock.js'
import type { EventBus } from './events.js'
import type { JobRunner } from './job-runner.js'
import type { Component } from './lifecycle.js'
import type { PullsInFlight } from './pulls-in-flight.js'
import type { SnapshotStore } from './snapshot.js'

/** What every feature of the agent is built from. */
export interface AgentContext {
  config: AgentConfig
  log: Logger
  store: SnapshotStore
  bus: EventBus
  runner: JobRunner
  /** the container runtime: the one connection to the engine every feature goes through */
  runtime: ContainerRuntime
  /** references this agent's pulls are writing: prewarm adds them, prune leaves them alone */
  pulls: PullsInFlight
  /** the images this host should hold (prewarm.images and images held for a rollout): prune keeps them */
  wanted: WantedSet
  http: HttpServer
  /** prune, prewarm, check, status: what HTTP, the coordinator and the CLI invoke */
  actions: ActionRegistry
  /** the one clock every part reads */
  now: Clock
  /** the coordinator link's state, from the feature that declared it (none: not configured) */
  linkState: () => LinkState
  /** keeps state writable on a full disk: the reserve, write retries, write error counts */
  state: StateGuard
}

export interface LinkState {
  configured: boolean
  connected: boolean
  pending: number
  lastError?: string | null
  /** outbox entries dropped to keep its bound, by type */
  dropped?: Record<string, number>
}

/** What a feature brings: its components, in start order, and the collectors readiness waits for. */
export interface FeatureParts {
  components: Component[]
  /** names of the collectors it runs; /readyz answers ready once each has run once */
  collectors?: string[]
  /** the coordinator link's state, from the one feature that runs the link */
  linkState?: () => LinkState
  /** the peer listener's counts, from the feature that serves peers (when peers.serve is on) */
  peerStats?: PeerServeStats
}

/** A feature adds its routes and actions, and returns its parts. */
export type Feature = (ctx: AgentContext) => FeatureParts

// What a prewarm works with: the runtime, the registries, the host's facts and where it reports.
import type { Logger } from 'pino'
import type { ActionRegistry } from '../core/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus } from '../core/events.js'
import { systemClock, type Clock } from '../core/clock.js'
import type { ContainerRuntime, PullProgress } from '../runtime/runtime.js'
import type { PullsInFlight } from '../core/pulls-in-flight.js'
import type { ImageCompat } from '../core/snapshot.js'
import type { CredentialStore } from '../registry/credentials.js'
import type { RemoteImageSource } from '../registry/types.js'
import type { JobRunner } from '../core/job-runner.js'
import type { PrewarmHostFacts } from './facts.js'
import type { PullResult } from './result.js'

export interface PrewarmDeps {
  runtime: ContainerRuntime
  /** references being pulled: added for as long as each pull lasts, so a prune leaves them alone */
  pulls: PullsInFlight
  source: RemoteImageSource & { sourcesFor(domain: string): string[] }
  credentials: CredentialStore
  config: Pick<AgentConfig, 'prewarm' | 'prune'>
  bus: EventBus
  runner: JobRunner
  actions?: ActionRegistry
  /** local images, disk and registry trust, read fresh */
  facts: () => Promise<PrewarmHostFacts>
  /** the driver's verdict on an image's CUDA env */
  compat: () => Promise<(cudaEnv: Record<string, string>) => ImageCompat>
  log: Logger
  /** the agent's clock; the system clock when absent */
  now?: Clock
  /** finer progress than the events, for a terminal */
  onProgress?: (ref: string, p: PullProgress & { source: string }) => void
  onResult?: (r: PullResult) => void
  /** backoff before the first retry; doubles each time, with jitter */
  retryMinMs?: number
  /** the wanted set (prewarm.images and images held for rollouts): what a prewarm naming no images pulls */
  wanted?: () => string[]
  /** peers.tls.caFile: the fleet CA https:// peers are checked against */
  peerCaFile?: string | null
  /** peers.allowLoopback: peers on 127.0.0.1 / ::1 are fetched from (a fleet on one machine) */
  peerAllowLoopback?: boolean
}

/** the clock as milliseconds, for durations */
export function millis(clock: Clock = systemClock): () => number {
  return () => clock().getTime()
}

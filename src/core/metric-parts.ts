// What a feature's metrics are built from: each feature folder registers its own series on the one
// registry (src/*/metrics.ts); src/agent/metrics.ts composes them in a fixed order.
import type { Registry } from 'prom-client'
import type { AgentEvent } from './events.js'
import type { HostSnapshot } from './snapshot.js'

/** every series name starts with this */
export const METRIC_PREFIX = 'gpuhost_'

export interface MetricsSources {
  snapshot: () => HostSnapshot
  /** coordinator link state; absent when no coordinator is configured */
  link?: () => { connected: boolean; pending: number; dropped?: Record<string, number> }
  /** failed writes of durable state, by store */
  stateWriteErrors?: () => Record<string, number>
  /** the prewarm's wanted set (references); absent: none */
  wanted?: () => string[]
  version: string
}

/** the registries a series registers on (prom-client's `registers`) */
export type Registries = Registry[]

/** counts events into counters; registered once, called for every event on the bus */
export type EventCounter = (e: AgentEvent) => void

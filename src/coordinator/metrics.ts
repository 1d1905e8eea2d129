// The coordinator's /metrics: connected agents, commands by action and status, events received.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { COMMAND_ACTIONS } from '../protocol.js'
import type { HubCounters } from './hub/options.js'
import type { FleetStore } from './store/fleet-store.js'
import { ROLLOUT_HOST_STATES, ROLLOUT_STATES, SOURCE_KINDS } from './rollouts/plan.js'

const P = 'gpuhost_coordinator_'
const STATUSES = ['pending', 'running', 'succeeded', 'failed']

export function createCoordinatorMetrics(src: {
  store: FleetStore
  connected: () => number
  counters: HubCounters
  version: string
}): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: P })
  const reg = [registry]
  new Gauge({
    name: `${P}build_info`,
    help: 'gpuhost version; always 1',
    labelNames: ['version'],
    registers: reg,
    collect() {
      this.set({ version: src.version }, 1)
    },
  })
  new Gauge({
    name: `${P}agents_connected`,
    help: 'agents connected now',
    registers: reg,
    collect() {
      this.set(src.connected())
    },
  })
  new Gauge({
    name: `${P}hosts`,
    help: 'hosts ever seen',
    registers: reg,
    async collect() {
      this.set(await src.store.hostCount())
    },
  })
  new Gauge({
    name: `${P}commands`,
    help: 'commands by action and current status',
    labelNames: ['action', 'status'],
    registers: reg,
    async collect() {
      const counts = await src.store.commandCounts()
      this.reset()
      for (const action of COMMAND_ACTIONS) for (const status of STATUSES) this.set({ action, status }, 0)
      for (const c of counts) this.set({ action: c.action, status: c.status }, c.n)
    },
  })
  // Counted since this process started, by the hub; read at scrape time so there is one source of truth.
  counterFrom(
    reg,
    `${P}events_received_total`,
    'event messages received from agents, duplicates included',
    () => src.counters.eventsReceived,
  )
  counterFrom(
    reg,
    `${P}events_duplicate_total`,
    'event messages received again and dropped by id',
    () => src.counters.eventsDuplicate,
  )
  counterFrom(reg, `${P}frames_refused_total`, 'agent frames refused as invalid', () => src.counters.framesRefused)
  counterFrom(
    reg,
    `${P}connections_refused_total`,
    "agent connections closed for another host's credential, " +
      'a second live connection, or a hello that could not be stored',
    () => src.counters.connectionsRefused,
  )
  new Gauge({
    name: `${P}rollouts`,
    help: 'rollouts by state',
    labelNames: ['state'],
    registers: reg,
    async collect() {
      const counts = await src.store.rollouts.rolloutCounts()
      for (const state of ROLLOUT_STATES) this.set({ state }, 0)
      for (const c of counts) this.set({ state: c.state }, c.n)
    },
  })
  new Gauge({
    name: `${P}rollout_hosts`,
    help: 'hosts of every rollout by their state in it (a host counts once per rollout it is in)',
    labelNames: ['state'],
    registers: reg,
    async collect() {
      const counts = await src.store.rollouts.rolloutHostCounts()
      for (const state of ROLLOUT_HOST_STATES) this.set({ state }, 0)
      for (const c of counts) this.set({ state: c.state }, c.n)
    },
  })
  counterFrom(
    reg,
    `${P}rollout_bytes_pulled_total`,
    "bytes of the images rollouts' hosts fetched, as the agents reported them: a registry or mirror " +
      "pull counts the image's compressed layers, a peer fetch the docker save archive (uncompressed tar) it read",
    () => src.store.rollouts.rolloutBytesPulled(),
  )
  new Counter({
    name: `${P}rollout_fetched_bytes_total`,
    help:
      "bytes of the images rollouts' hosts fetched, by where they came from (registry, mirror, peer), " +
      'as the agents reported them: compressed layers from a registry or mirror, docker save tar bytes from a peer',
    labelNames: ['source_kind'],
    registers: reg,
    async collect() {
      const counts = await src.store.rollouts.rolloutBytesBySource()
      this.reset()
      for (const sourceKind of SOURCE_KINDS) this.inc({ source_kind: sourceKind }, 0)
      for (const c of counts)
        if ((SOURCE_KINDS as readonly string[]).includes(c.sourceKind)) this.inc({ source_kind: c.sourceKind }, c.n)
    },
  })
  new Gauge({
    name: `${P}events_stored`,
    help: 'events in the database',
    registers: reg,
    async collect() {
      this.set(await src.store.eventCount())
    },
  })
  return registry
}

/** A counter whose value is kept elsewhere and read at scrape time. */
function counterFrom(reg: Registry[], name: string, help: string, read: () => number | Promise<number>): void {
  new Counter({
    name,
    help,
    registers: reg,
    async collect() {
      const value = await read()
      this.reset()
      this.inc(value)
    },
  })
}

// The agent's /v1/status body, built from the snapshot and the last job events.
import type { AgentEvent, EventBus, EventMap } from '../core/events.js'
import type { FailingPart } from './readiness.js'
import type { HostFacts } from '../inventory/host-facts-schema.js'
import { summarizeImages, type DiskBreakdown, type HostSnapshot, type ImageSummary } from '../core/snapshot.js'

export type AgentStatus = {
  hostId: string
  version: string
  takenAt: string
  docker: HostSnapshot['docker']
  gpu: HostSnapshot['gpu']
  nvidiaRuntime: HostSnapshot['nvidiaRuntime'] | null
  disk: HostSnapshot['disk']
  /** OS, kernel, CPU, memory, system and block devices; null until read (absent from an older agent) */
  host?: HostFacts | null
  /** null until the slow disk breakdown has run */
  diskBreakdown: DiskBreakdown | null
  images: ImageSummary | null
  collectors: HostSnapshot['collectors']
  lastPrune: LastJob<'prune.finished'> | null
  lastPrewarm: LastJob<'prewarm.finished'> | null
  coordinator: { configured: boolean; connected: boolean; pending: number; lastError?: string | null }
  /** components whose start failed and is being retried, then collectors whose last run failed; empty when all run */
  failingComponents: FailingPart[]
}

/** a finished job's event payload with the time it finished */
export type LastJob<K extends 'prune.finished' | 'prewarm.finished'> = EventMap[K] & { ts: string }

/** Remembers the last finished prune and prewarm so status can show them. */
export class JobHistory {
  lastPrune: LastJob<'prune.finished'> | null = null
  lastPrewarm: LastJob<'prewarm.finished'> | null = null

  listen(bus: EventBus): () => void {
    return bus.subscribe((e: AgentEvent) => {
      if (e.type === 'prune.finished') this.lastPrune = { ts: e.ts, ...e.data }
      if (e.type === 'prewarm.finished') this.lastPrewarm = { ts: e.ts, ...e.data }
    })
  }
}

export function buildStatus(args: {
  hostId: string
  version: string
  snapshot: HostSnapshot
  history: JobHistory
  link: { configured: boolean; connected: boolean; pending: number; lastError?: string | null }
  failing?: FailingPart[]
}): AgentStatus {
  const s = args.snapshot
  return {
    hostId: args.hostId,
    version: args.version,
    takenAt: s.takenAt,
    docker: s.docker,
    gpu: s.gpu,
    nvidiaRuntime: s.nvidiaRuntime ?? null,
    disk: s.disk,
    host: s.host ?? null,
    diskBreakdown: s.diskBreakdown ?? null,
    images: s.images ? summarizeImages(s.images) : null,
    collectors: s.collectors,
    lastPrune: args.history.lastPrune,
    lastPrewarm: args.history.lastPrewarm,
    coordinator: args.link,
    failingComponents: args.failing ?? [],
  }
}

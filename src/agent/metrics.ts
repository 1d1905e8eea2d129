// /metrics: every gpuhost_* series, rendered from the cached snapshot (gauges) and from events
// (counters). Each feature folder declares its own series (src/*/metrics.ts); this composes them on
// one registry, in a fixed order. A scrape reads memory only; it never calls Docker or nvidia-smi.
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { AgentEvent } from '../core/events.js'
import { METRIC_PREFIX as P, type MetricsSources } from '../core/metric-parts.js'
import { registerNvidiaRuntimeMetrics, registerImageCompatMetrics } from '../compat/metrics.js'
import { registerGpuMetrics } from '../gpu/metrics.js'
import { registerGpuHealthMetrics } from '../gpu/health-metrics.js'
import { registerContainerGpuMetrics } from '../gpu/container-metrics.js'
import { registerDiskAndImageMetrics } from '../inventory/metrics.js'
import { registerHostMetrics } from '../inventory/host-metrics.js'
import { registerLinkMetrics } from '../link/metrics.js'
import { registerPeerMetrics, type PeerServeStats } from '../peers/metrics.js'
import { registerPrewarmMetrics } from '../prewarm/metrics.js'
import { registerPruneMetrics } from '../prune/metrics.js'
import { registerStateMetrics } from '../state/metrics.js'

export type { MetricsSources } from '../core/metric-parts.js'

export function createAgentMetrics(
  src: MetricsSources & {
    /** the peer listener's counts; absent or null while this host does not serve peers */
    peers?: () => PeerServeStats | null
  },
  opts: { processMetrics?: boolean } = {},
): { registry: Registry; onEvent: (e: AgentEvent) => void } {
  const registry = new Registry()
  if (opts.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: P })
    // prom-client names these gauges *_total, which promtool rejects (the suffix is for counters).
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      registry.removeSingleMetric(`${P}${name}`)
    }
  }
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

  registerNvidiaRuntimeMetrics(src, reg)
  registerGpuMetrics(src, reg)
  registerGpuHealthMetrics(src.snapshot, reg)
  registerContainerGpuMetrics(src.snapshot, reg)
  registerDiskAndImageMetrics(src, reg)
  registerHostMetrics(src, reg)
  registerImageCompatMetrics(src, reg)

  new Gauge({
    name: `${P}collector_success`,
    help: '1 if the last run of the collector succeeded, else 0',
    labelNames: ['collector'],
    registers: reg,
    collect() {
      this.reset()
      for (const [name, s] of Object.entries(src.snapshot().collectors))
        this.set({ collector: name }, s.success ? 1 : 0)
    },
  })
  new Gauge({
    name: `${P}collector_duration_seconds`,
    help: 'duration of the last run of the collector',
    labelNames: ['collector'],
    registers: reg,
    collect() {
      this.reset()
      for (const [name, s] of Object.entries(src.snapshot().collectors))
        this.set({ collector: name }, s.durationSeconds)
    },
  })

  registerLinkMetrics(src, reg)
  registerStateMetrics(src, reg)
  registerPeerMetrics(() => src.peers?.() ?? null, reg)

  const counters = [registerPruneMetrics(reg), registerPrewarmMetrics(src, reg)]
  return {
    registry,
    onEvent: (e) => {
      for (const count of counters) count(e)
    },
  }
}

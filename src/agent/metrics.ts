// Every gpuhost_* metric, rendered from the cached snapshot (gauges) and from events (counters).
// A scrape reads memory only; it never calls Docker or nvidia-smi.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { AgentEvent } from './events.js'
import { PULL_STATUSES } from '../protocol-events.js'
import { imageState, type HostSnapshot, type ImageState } from './snapshot.js'
import { registerGpuHealthMetrics } from '../gpu/health-metrics.js'
import { registerContainerGpuMetrics } from '../gpu/container-metrics.js'

const P = 'gpuhost_'
const IMAGE_STATES: ImageState[] = ['in_use', 'unused', 'dangling']

export interface MetricsSources {
  snapshot: () => HostSnapshot
  /** coordinator link state; absent when no coordinator is configured */
  link?: () => { connected: boolean; pending: number; dropped?: Record<string, number> }
  /** failed writes of durable state, by store */
  stateWriteErrors?: () => Record<string, number>
  version: string
}

export function createAgentMetrics(src: MetricsSources, opts: { processMetrics?: boolean } = {}): { registry: Registry; onEvent: (e: AgentEvent) => void } {
  const registry = new Registry()
  if (opts.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: P })
    // prom-client names these gauges *_total, which promtool rejects (the suffix is for counters).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(`${P}${name}`)
    }
  }
  const reg = [registry]

  new Gauge({ name: `${P}build_info`, help: 'gpuhost version; always 1', labelNames: ['version'], registers: reg,
    collect() { this.set({ version: src.version }, 1) } })

  registerGpuMetrics(src, reg)
  registerGpuHealthMetrics(src.snapshot, reg)
  registerContainerGpuMetrics(src.snapshot, reg)
  registerDiskAndImageMetrics(src, reg)

  new Gauge({ name: `${P}collector_success`, help: '1 if the last run of the collector succeeded, else 0', labelNames: ['collector'], registers: reg,
    collect() {
      this.reset()
      for (const [name, s] of Object.entries(src.snapshot().collectors)) this.set({ collector: name }, s.success ? 1 : 0)
    } })
  new Gauge({ name: `${P}collector_duration_seconds`, help: 'duration of the last run of the collector', labelNames: ['collector'], registers: reg,
    collect() {
      this.reset()
      for (const [name, s] of Object.entries(src.snapshot().collectors)) this.set({ collector: name }, s.durationSeconds)
    } })

  new Gauge({ name: `${P}coordinator_connected`, help: '1 while the link to the coordinator is up', registers: reg,
    collect() { this.set(src.link?.().connected ? 1 : 0) } })
  new Gauge({ name: `${P}outbox_pending_events`, help: 'events written to the outbox and not yet acknowledged by the coordinator', registers: reg,
    collect() { this.set(src.link?.().pending ?? 0) } })
  new Counter({
    name: `${P}outbox_dropped_total`, labelNames: ['type'],
    help: 'outbox entries dropped to keep its bound, by event type',
    registers: reg,
    collect() {
      this.reset()
      for (const [type, n] of Object.entries(src.link?.().dropped ?? {})) this.inc({ type }, n)
    } })
  new Counter({
    name: `${P}state_write_errors_total`, labelNames: ['store'],
    help: 'failed writes of durable state in stateDir, by store',
    registers: reg,
    collect() {
      this.reset()
      for (const [store, n] of Object.entries(src.stateWriteErrors?.() ?? {})) this.inc({ store }, n)
    } })

  return { registry, onEvent: eventCounters(reg) }
}

function registerGpuMetrics(src: MetricsSources, reg: Registry[]): void {
  const perGpu = (name: string, help: string, pick: (g: HostSnapshot['gpu']['gpus'][number]) => number | undefined) =>
    new Gauge({ name: `${P}${name}`, help, labelNames: ['gpu', 'uuid'], registers: reg,
      collect() {
        this.reset()
        for (const g of src.snapshot().gpu.gpus) {
          const v = pick(g)
          if (v !== undefined) this.set({ gpu: String(g.index), uuid: g.uuid }, v)
        }
      } })

  new Gauge({
    name: `${P}nvidia_runtime_info`,
    help: 'NVIDIA container runtime: configured and effective mode, Docker default runtime, toolkit version, ' +
      'whether it enforces NVIDIA_REQUIRE_*; always 1',
    labelNames: ['installed', 'mode', 'effective_mode', 'default_runtime', 'toolkit_version', 'enforced'],
    registers: reg,
    collect() {
      this.reset()
      const rt = src.snapshot().nvidiaRuntime
      if (!rt) return
      this.set({
        installed: String(rt.installed), mode: rt.mode ?? '', effective_mode: rt.effectiveMode,
        default_runtime: rt.defaultRuntime ?? '', toolkit_version: rt.toolkitVersion ?? '',
        enforced: String(rt.enforced),
      }, 1)
    } })

  new Gauge({ name: `${P}gpu_info`, help: 'GPU identity, driver and CUDA version; always 1', labelNames: ['gpu', 'uuid', 'name', 'driver_version', 'cuda_version'], registers: reg,
    collect() {
      this.reset()
      const gpu = src.snapshot().gpu
      for (const g of gpu.gpus) {
        this.set({ gpu: String(g.index), uuid: g.uuid, name: g.name, driver_version: gpu.driverVersion ?? '', cuda_version: gpu.cudaVersion ?? '' }, 1)
      }
    } })
  perGpu('gpu_memory_total_bytes', 'GPU framebuffer memory in total', (g) => g.memoryTotalBytes)
  perGpu('gpu_memory_used_bytes', 'GPU framebuffer memory in use', (g) => g.memoryUsedBytes)
  perGpu('gpu_utilization_ratio', 'GPU utilization, 0 to 1', (g) => g.utilizationRatio)
  perGpu('gpu_temperature_celsius', 'GPU core temperature', (g) => g.temperatureCelsius)
  perGpu('gpu_power_draw_watts', 'GPU power draw', (g) => g.powerDrawWatts)
}

function registerDiskAndImageMetrics(src: MetricsSources, reg: Registry[]): void {
  const perMount = (name: string, help: string, pick: (d: NonNullable<HostSnapshot['disk']>) => number) =>
    new Gauge({ name: `${P}${name}`, help, labelNames: ['mountpoint'], registers: reg,
      collect() {
        this.reset()
        const d = src.snapshot().disk
        if (d) this.set({ mountpoint: d.mountpoint }, pick(d))
      } })
  perMount('filesystem_size_bytes', 'size of the filesystem that holds Docker data', (d) => d.sizeBytes)
  perMount('filesystem_avail_bytes', 'bytes available to Docker on that filesystem', (d) => d.availBytes)

  const byState = (name: string, help: string, measure: (sizeBytes: number) => number) =>
    new Gauge({ name: `${P}${name}`, help, labelNames: ['state'], registers: reg,
      collect() {
        this.reset()
        const images = src.snapshot().images
        if (!images) return
        const totals = Object.fromEntries(IMAGE_STATES.map((s) => [s, 0])) as Record<ImageState, number>
        for (const image of images) totals[imageState(image)] += measure(image.sizeBytes)
        for (const s of IMAGE_STATES) this.set({ state: s }, totals[s])
      } })
  byState('docker_images', 'images by state', () => 1)
  byState('docker_images_size_bytes', 'image bytes by state (shared layers counted in every image)', (size) => size)

  new Gauge({ name: `${P}images_cuda_incompatible`, help: 'local images whose CUDA requirement this host driver cannot meet', registers: reg,
    collect() { this.set((src.snapshot().images ?? []).filter((i) => i.compat?.compatible === false).length) } })
}

function eventCounters(reg: Registry[]): (e: AgentEvent) => void {
  const pruneRuns = new Counter({ name: `${P}prune_runs_total`, help: 'prune runs by trigger and result', labelNames: ['trigger', 'result'], registers: reg })
  const freed = new Counter({ name: `${P}prune_freed_bytes_total`, help: 'bytes freed by prunes, as measured on the filesystem', registers: reg })
  const removed = new Counter({ name: `${P}prune_images_removed_total`, help: 'images removed by prunes', registers: reg })
  const pulls = new Counter({ name: `${P}prewarm_pulls_total`, help: 'prewarm results per image', labelNames: ['result'], registers: reg })
  const pullDuration = new Histogram({ name: `${P}prewarm_pull_duration_seconds`, help: 'duration of image pulls that transferred data', registers: reg,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800] })
  for (const result of PULL_STATUSES) pulls.inc({ result }, 0)

  return (e) => {
    if (e.type === 'prune.finished') {
      const d = e.data
      pruneRuns.inc({ trigger: d.trigger, result: d.dryRun ? 'dry_run' : d.result })
      if (d.freedBytes > 0) freed.inc(d.freedBytes)
      removed.inc(d.removedCount)
    } else if (e.type === 'pull.finished' || e.type === 'pull.failed') {
      pulls.inc({ result: e.data.status })
      if (e.data.status === 'pulled') pullDuration.observe(e.data.durationSeconds)
    }
  }
}

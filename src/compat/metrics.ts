// Compatibility series: how the NVIDIA container runtime is set up on this host, and how many local
// images its driver cannot run. Rendered from the snapshot at scrape time.
import { Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'

export function registerNvidiaRuntimeMetrics(src: MetricsSources, reg: Registries): void {
  new Gauge({
    name: `${P}nvidia_runtime_info`,
    help:
      'NVIDIA container runtime: configured and effective mode, Docker default runtime, toolkit version, ' +
      'whether it enforces NVIDIA_REQUIRE_*; always 1',
    labelNames: ['installed', 'mode', 'effective_mode', 'default_runtime', 'toolkit_version', 'enforced'],
    registers: reg,
    collect() {
      this.reset()
      const rt = src.snapshot().nvidiaRuntime
      if (!rt) return
      this.set(
        {
          installed: String(rt.installed),
          mode: rt.mode ?? '',
          effective_mode: rt.effectiveMode,
          default_runtime: rt.defaultRuntime ?? '',
          toolkit_version: rt.toolkitVersion ?? '',
          enforced: String(rt.enforced),
        },
        1,
      )
    },
  })
}

export function registerImageCompatMetrics(src: MetricsSources, reg: Registries): void {
  new Gauge({
    name: `${P}images_cuda_incompatible`,
    help: 'local images whose CUDA requirement this host driver cannot meet',
    registers: reg,
    collect() {
      this.set((src.snapshot().images ?? []).filter((i) => i.compat?.compatible === false).length)
    },
  })
}

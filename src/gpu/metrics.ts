// Per-GPU identity and usage series, rendered from the snapshot at scrape time.
import { Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'
import type { HostSnapshot } from '../core/snapshot.js'

export function registerGpuMetrics(src: MetricsSources, reg: Registries): void {
  new Gauge({
    name: `${P}gpu_info`,
    help: 'GPU identity, driver and CUDA version; always 1',
    labelNames: ['gpu', 'uuid', 'name', 'driver_version', 'cuda_version'],
    registers: reg,
    collect() {
      this.reset()
      const gpu = src.snapshot().gpu
      for (const g of gpu.gpus) {
        this.set(
          {
            gpu: String(g.index),
            uuid: g.uuid,
            name: g.name,
            driver_version: gpu.driverVersion ?? '',
            cuda_version: gpu.cudaVersion ?? '',
          },
          1,
        )
      }
    },
  })

  const perGpu = (name: string, help: string, pick: (g: HostSnapshot['gpu']['gpus'][number]) => number | undefined) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: ['gpu', 'uuid'],
      registers: reg,
      collect() {
        this.reset()
        for (const g of src.snapshot().gpu.gpus) {
          const v = pick(g)
          if (v !== undefined) this.set({ gpu: String(g.index), uuid: g.uuid }, v)
        }
      },
    })
  perGpu('gpu_memory_total_bytes', 'GPU framebuffer memory in total', (g) => g.memoryTotalBytes)
  perGpu('gpu_memory_used_bytes', 'GPU framebuffer memory in use', (g) => g.memoryUsedBytes)
  perGpu('gpu_utilization_ratio', 'GPU utilization, 0 to 1', (g) => g.utilizationRatio)
  perGpu('gpu_temperature_celsius', 'GPU core temperature', (g) => g.temperatureCelsius)
  perGpu('gpu_power_draw_watts', 'GPU power draw', (g) => g.powerDrawWatts)
}

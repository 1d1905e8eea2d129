// Host fact series, rendered from the snapshot's host facts at scrape time: read at agent start and
// on SIGHUP, never per scrape. Label values are the facts' bounded texts (at most 200 characters).
import { Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'
import { hostSummary } from './host-facts-map.js'

export function registerHostMetrics(src: MetricsSources, reg: Registries): void {
  new Gauge({
    name: `${P}host_info`,
    help: 'the host: OS distribution and release, kernel, architecture, CPU and system model; always 1',
    labelNames: ['os', 'kernel', 'arch', 'cpu', 'system'],
    registers: reg,
    collect() {
      this.reset()
      const h = src.snapshot().host
      if (!h) return
      const { os, cpu, system } = hostSummary(h)
      this.set({ os, kernel: h.os.kernel ?? '', arch: h.os.arch ?? '', cpu, system }, 1)
    },
  })
  new Gauge({
    name: `${P}host_memory_bytes`,
    help: 'physical memory of the host',
    registers: reg,
    collect() {
      const total = src.snapshot().host?.memory.totalBytes
      // Unknown is no sample, not 0: an unlabelled gauge holds 0 until set, so its one series is removed.
      if (total === undefined) this.remove()
      else this.set(total)
    },
  })
}

// Disk and image series, rendered from the snapshot at scrape time.
import { Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../agent/metric-parts.js'
import { DISK_KINDS } from './disk-breakdown.js'
import { imageState, type HostSnapshot, type ImageState } from '../agent/snapshot.js'

const IMAGE_STATES: ImageState[] = ['in_use', 'unused', 'dangling']

export function registerDiskAndImageMetrics(src: MetricsSources, reg: Registries): void {
  const perMount = (name: string, help: string, pick: (d: NonNullable<HostSnapshot['disk']>) => number) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: ['mountpoint'],
      registers: reg,
      collect() {
        this.reset()
        const d = src.snapshot().disk
        if (d) this.set({ mountpoint: d.mountpoint }, pick(d))
      },
    })
  perMount('filesystem_size_bytes', 'size of the filesystem that holds Docker data', (d) => d.sizeBytes)
  perMount('filesystem_avail_bytes', 'bytes available to Docker on that filesystem', (d) => d.availBytes)

  const byState = (name: string, help: string, measure: (sizeBytes: number) => number) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: ['state'],
      registers: reg,
      collect() {
        this.reset()
        const images = src.snapshot().images
        if (!images) return
        const totals = Object.fromEntries(IMAGE_STATES.map((s) => [s, 0])) as Record<ImageState, number>
        for (const image of images) totals[imageState(image)] += measure(image.sizeBytes)
        for (const s of IMAGE_STATES) this.set({ state: s }, totals[s])
      },
    })
  new Gauge({
    name: `${P}runtime_info`,
    help: 'the container runtime the agent talks to (docker or containerd) and its version; 1 while it answers',
    labelNames: ['kind', 'version'],
    registers: reg,
    collect() {
      this.reset()
      const h = src.snapshot().docker
      if (h.kind) this.set({ kind: h.kind, version: h.version ?? '' }, h.reachable ? 1 : 0)
    },
  })
  byState('docker_images', 'images by state', () => 1)
  byState('docker_images_size_bytes', 'image bytes by state (shared layers counted in every image)', (size) => size)

  new Gauge({
    name: `${P}docker_disk_bytes`,
    help: 'bytes under the container runtime root by kind, from its own accounting on the slow breakdown interval',
    labelNames: ['kind'],
    registers: reg,
    collect() {
      this.reset()
      const b = src.snapshot().diskBreakdown
      if (b) for (const kind of DISK_KINDS) this.set({ kind }, b.bytes[kind])
    },
  })
  new Gauge({
    name: `${P}docker_large_logs`,
    help: 'containers whose log is over disk.logWarnBytes at the last disk breakdown',
    registers: reg,
    collect() {
      this.reset()
      const b = src.snapshot().diskBreakdown
      if (b) this.set(b.largeLogs.length)
    },
  })
}

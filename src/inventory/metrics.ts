// Disk and image series, rendered from the snapshot at scrape time.
import { Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'
import { DISK_KINDS, imageState, type HostSnapshot, type ImageFacts, type ImageState } from '../core/snapshot.js'

const IMAGE_STATES: ImageState[] = ['in_use', 'unused', 'dangling']

type StateTotals = Record<'count' | 'bytes', Record<ImageState, number>>
/**
 * Counts and bytes by state, once per image list: the collector replaces the list on each run, so a
 * scrape between runs (most of them, with thousands of images) reads the totals it already has.
 */
const totalsByList = new WeakMap<readonly ImageFacts[], StateTotals>()
function stateTotals(images: readonly ImageFacts[]): StateTotals {
  let totals = totalsByList.get(images)
  if (!totals) {
    const zero = () => Object.fromEntries(IMAGE_STATES.map((s) => [s, 0])) as Record<ImageState, number>
    totals = { count: zero(), bytes: zero() }
    for (const image of images) {
      const state = imageState(image)
      totals.count[state] += 1
      totals.bytes[state] += image.sizeBytes
    }
    totalsByList.set(images, totals)
  }
  return totals
}

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

  const byState = (name: string, help: string, measure: keyof StateTotals) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: ['state'],
      registers: reg,
      collect() {
        this.reset()
        const images = src.snapshot().images
        if (!images) return
        const totals = stateTotals(images)[measure]
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
  byState('docker_images', 'images by state', 'count')
  byState('docker_images_size_bytes', 'image bytes by state (shared layers counted in every image)', 'bytes')

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

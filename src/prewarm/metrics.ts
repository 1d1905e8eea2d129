// Prewarm series: results and durations counted from pull.finished and pull.failed events, and the
// wanted set by state, from the snapshot's images and the last result of each wanted image.
import { Counter, Gauge, Histogram } from 'prom-client'
import { METRIC_PREFIX as P, type EventCounter, type MetricsSources, type Registries } from '../core/metric-parts.js'
import { PULL_STATUSES } from '../protocol-events.js'
import { missingRefs } from './wanted.js'

export const WANTED_STATES = ['present', 'missing', 'skipped_incompatible', 'skipped_disk'] as const

export function registerPrewarmMetrics(
  src: Pick<MetricsSources, 'snapshot' | 'wanted'>,
  reg: Registries,
): EventCounter {
  const pulls = new Counter({
    name: `${P}prewarm_pulls_total`,
    help: 'prewarm results per image',
    labelNames: ['result'],
    registers: reg,
  })
  const pullDuration = new Histogram({
    name: `${P}prewarm_pull_duration_seconds`,
    help: 'duration of image pulls that transferred data',
    registers: reg,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800],
  })
  const fetched = new Counter({
    name: `${P}prewarm_fetched_bytes_total`,
    help:
      'bytes of pulled images by where they came from: the registry or a mirror (compressed layers), ' +
      'or a peer host of the fleet (its docker save archive, uncompressed tar bytes)',
    labelNames: ['source_kind'],
    registers: reg,
  })
  for (const result of PULL_STATUSES) pulls.inc({ result }, 0)
  for (const kind of ['registry', 'mirror', 'peer']) fetched.inc({ source_kind: kind }, 0)
  /** why the last prewarm skipped an image, by reference as the prewarm named it */
  const skipped = new Map<string, 'incompatible' | 'disk'>()
  new Gauge({
    name: `${P}prewarm_wanted_images`,
    help: 'images of the prewarm wanted set (prewarm.images and images held for rollouts) by state',
    labelNames: ['state'],
    registers: reg,
    collect() {
      const counts = Object.fromEntries(WANTED_STATES.map((s) => [s, 0])) as Record<string, number>
      const wanted = src.wanted?.() ?? []
      const local = src.snapshot().images
      // Before the first image collection nothing is known to be present: all count as missing.
      const missing = new Set(missingRefs(wanted, local ?? []))
      for (const ref of wanted) {
        const skip = skipped.get(ref)
        const state = !missing.has(ref) ? 'present' : skip ? `skipped_${skip}` : 'missing'
        counts[state]++
      }
      for (const state of WANTED_STATES) this.set({ state }, counts[state])
    },
  })
  return (e) => {
    if (e.type !== 'pull.finished' && e.type !== 'pull.failed') return
    pulls.inc({ result: e.data.status })
    if (e.data.status === 'pulled') pullDuration.observe(e.data.durationSeconds)
    if (e.data.status === 'pulled' && e.data.sourceKind && e.data.bytesPulled)
      fetched.inc({ source_kind: e.data.sourceKind }, e.data.bytesPulled)
    if (e.data.status === 'skipped' && e.data.skip) skipped.set(e.data.ref, e.data.skip)
    else skipped.delete(e.data.ref)
  }
}

// Prune counters, counted from prune.finished events.
import { Counter } from 'prom-client'
import { METRIC_PREFIX as P, type EventCounter, type Registries } from '../core/metric-parts.js'

export function registerPruneMetrics(reg: Registries): EventCounter {
  const pruneRuns = new Counter({
    name: `${P}prune_runs_total`,
    help: 'prune runs by trigger and result',
    labelNames: ['trigger', 'result'],
    registers: reg,
  })
  const freed = new Counter({
    name: `${P}prune_freed_bytes_total`,
    help: 'bytes freed by prunes, as measured on the filesystem',
    registers: reg,
  })
  const removed = new Counter({
    name: `${P}prune_images_removed_total`,
    help: 'images removed by prunes',
    registers: reg,
  })
  const reclaimed = new Counter({
    name: `${P}prune_reclaimed_bytes_total`,
    help: "bytes prunes gave back by kind (containers, images, build_cache, volumes), by the runtime's own sizes",
    labelNames: ['kind'],
    registers: reg,
  })
  return (e) => {
    if (e.type !== 'prune.finished') return
    const d = e.data
    pruneRuns.inc({ trigger: d.trigger, result: d.dryRun ? 'dry_run' : d.result })
    if (d.freedBytes > 0) freed.inc(d.freedBytes)
    removed.inc(d.removedCount)
    const k = d.freedBytesByKind
    if (!k || d.dryRun) return
    const kinds = { containers: k.containers, images: k.images, build_cache: k.buildCache, volumes: k.volumes }
    for (const [kind, bytes] of Object.entries(kinds)) if (bytes > 0) reclaimed.inc({ kind }, bytes)
  }
}

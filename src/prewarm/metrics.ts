// Prewarm counters, counted from pull.finished and pull.failed events.
import { Counter, Histogram } from 'prom-client'
import { METRIC_PREFIX as P, type EventCounter, type Registries } from '../agent/metric-parts.js'
import { PULL_STATUSES } from '../protocol-events.js'

export function registerPrewarmMetrics(reg: Registries): EventCounter {
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
  for (const result of PULL_STATUSES) pulls.inc({ result }, 0)
  return (e) => {
    if (e.type !== 'pull.finished' && e.type !== 'pull.failed') return
    pulls.inc({ result: e.data.status })
    if (e.data.status === 'pulled') pullDuration.observe(e.data.durationSeconds)
  }
}

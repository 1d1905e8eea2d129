// The coordinator link's series: whether it is up, and what its outbox holds and had to drop.
import { Counter, Gauge } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'

export function registerLinkMetrics(src: MetricsSources, reg: Registries): void {
  new Gauge({
    name: `${P}coordinator_connected`,
    help: '1 while the link to the coordinator is up',
    registers: reg,
    collect() {
      this.set(src.link?.().connected ? 1 : 0)
    },
  })
  new Gauge({
    name: `${P}outbox_pending_events`,
    help: 'events written to the outbox and not yet acknowledged by the coordinator',
    registers: reg,
    collect() {
      this.set(src.link?.().pending ?? 0)
    },
  })
  new Counter({
    name: `${P}outbox_dropped_total`,
    labelNames: ['type'],
    help: 'outbox entries dropped to keep its bound, by event type',
    registers: reg,
    collect() {
      this.reset()
      for (const [type, n] of Object.entries(src.link?.().dropped ?? {})) this.inc({ type }, n)
    },
  })
}

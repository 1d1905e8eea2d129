// Failed writes of durable state (outbox, usage file, journals) in stateDir, by store.
import { Counter } from 'prom-client'
import { METRIC_PREFIX as P, type MetricsSources, type Registries } from '../core/metric-parts.js'

export function registerStateMetrics(src: MetricsSources, reg: Registries): void {
  new Counter({
    name: `${P}state_write_errors_total`,
    labelNames: ['store'],
    help: 'failed writes of durable state in stateDir, by store',
    registers: reg,
    collect() {
      this.reset()
      for (const [store, n] of Object.entries(src.stateWriteErrors?.() ?? {})) this.inc({ store }, n)
    },
  })
}

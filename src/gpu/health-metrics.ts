// The GPU health series, rendered from the snapshot at scrape time (see health.ts for the rules).
// Label sets stay bounded: per GPU, and fixed reason codes.
import { Gauge, type Registry } from 'prom-client'
import type { HostSnapshot } from '../core/snapshot.js'
import { HEALTH_STATES, isDriverLibraryMismatch, judgeHost } from './health.js'

import { METRIC_PREFIX as P } from '../core/metric-parts.js'

export function registerGpuHealthMetrics(snapshot: () => HostSnapshot, reg: Registry[]): void {
  const gpus = () => snapshot().gpu.gpus
  const perGpu = (
    name: string,
    help: string,
    labels: string[],
    fill: (set: (l: Record<string, string>, v: number) => void) => void,
  ) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: labels,
      registers: reg,
      collect() {
        this.reset()
        fill((l, v) => this.set(l, v))
      },
    })

  perGpu(
    'gpu_health',
    'GPU health state (ok, degraded, failed): 1 for the current state',
    ['gpu', 'uuid', 'state'],
    (set) => {
      for (const g of judgeHost(snapshot().gpu).gpus) {
        for (const state of HEALTH_STATES) set({ gpu: String(g.index), uuid: g.uuid, state }, g.state === state ? 1 : 0)
      }
    },
  )
  perGpu(
    'gpu_health_reason',
    'why a GPU is not ok (fixed reason codes); always 1',
    ['gpu', 'uuid', 'reason'],
    (set) => {
      for (const g of judgeHost(snapshot().gpu).gpus)
        for (const reason of g.reasons) set({ gpu: String(g.index), uuid: g.uuid, reason }, 1)
    },
  )
  perGpu(
    'gpu_ecc_errors',
    'ECC error count as nvidia-smi reports it (volatile: since driver load; aggregate: lifetime)',
    ['gpu', 'uuid', 'scope', 'type'],
    (set) => {
      for (const g of gpus()) {
        for (const scope of ['volatile', 'aggregate'] as const) {
          const e = g.health?.ecc?.[scope]
          for (const type of ['correctable', 'uncorrectable'] as const) {
            const v = e?.[type]
            if (v !== undefined) set({ gpu: String(g.index), uuid: g.uuid, scope, type }, v)
          }
        }
      }
    },
  )
  perGpu('gpu_retired_pages', 'memory pages retired for ECC errors, by cause', ['gpu', 'uuid', 'cause'], (set) => {
    for (const g of gpus()) {
      const r = g.health?.retiredPages
      if (r?.singleBit !== undefined) set({ gpu: String(g.index), uuid: g.uuid, cause: 'single_bit' }, r.singleBit)
      if (r?.doubleBit !== undefined) set({ gpu: String(g.index), uuid: g.uuid, cause: 'double_bit' }, r.doubleBit)
    }
  })
  perGpu(
    'gpu_retired_pages_pending',
    '1 when a page retirement waits for the next GPU reset',
    ['gpu', 'uuid'],
    (set) => {
      for (const g of gpus()) {
        const p = g.health?.retiredPages?.pending
        if (p !== undefined) set({ gpu: String(g.index), uuid: g.uuid }, p ? 1 : 0)
      }
    },
  )
  perGpu(
    'gpu_remapped_rows',
    'memory rows remapped, by the kind of error that caused it',
    ['gpu', 'uuid', 'type'],
    (set) => {
      for (const g of gpus()) {
        const r = g.health?.remappedRows
        if (r?.correctable !== undefined)
          set({ gpu: String(g.index), uuid: g.uuid, type: 'correctable' }, r.correctable)
        if (r?.uncorrectable !== undefined)
          set({ gpu: String(g.index), uuid: g.uuid, type: 'uncorrectable' }, r.uncorrectable)
      }
    },
  )
  perGpu(
    'gpu_remapped_rows_state',
    'row remapping: pending (waits for a reset) and failure, 1 when so',
    ['gpu', 'uuid', 'state'],
    (set) => {
      for (const g of gpus()) {
        const r = g.health?.remappedRows
        if (r?.pending !== undefined) set({ gpu: String(g.index), uuid: g.uuid, state: 'pending' }, r.pending ? 1 : 0)
        if (r?.failure !== undefined) set({ gpu: String(g.index), uuid: g.uuid, state: 'failure' }, r.failure ? 1 : 0)
      }
    },
  )
  perGpu(
    'gpu_clock_event_active',
    'clock event reasons that mean trouble, 1 when active',
    ['gpu', 'uuid', 'reason'],
    (set) => {
      const names = {
        hwSlowdown: 'hw_slowdown',
        hwThermalSlowdown: 'hw_thermal_slowdown',
        hwPowerBrakeSlowdown: 'hw_power_brake_slowdown',
        swThermalSlowdown: 'sw_thermal_slowdown',
      } as const
      for (const g of gpus()) {
        for (const [key, reason] of Object.entries(names)) {
          const v = g.health?.clockEvents?.[key as keyof typeof names]
          if (v !== undefined) set({ gpu: String(g.index), uuid: g.uuid, reason }, v ? 1 : 0)
        }
      }
    },
  )
  new Gauge({
    name: `${P}gpus_expected`,
    help: 'NVIDIA GPUs on the PCI bus (sysfs)',
    registers: reg,
    collect() {
      this.reset()
      const n = snapshot().gpu.expectedGpus
      if (n !== undefined) this.set(n)
    },
  })
  new Gauge({
    name: `${P}gpus_seen`,
    help: 'GPUs nvidia-smi lists',
    registers: reg,
    collect() {
      this.set(snapshot().gpu.gpus.length)
    },
  })
  new Gauge({
    name: `${P}gpu_driver_library_mismatch`,
    help: '1 when nvidia-smi reports a driver/library version mismatch',
    registers: reg,
    collect() {
      this.set(isDriverLibraryMismatch(snapshot().gpu.reason) ? 1 : 0)
    },
  })
}

// Pure parse of the health fields of one <gpu> of `nvidia-smi -q -x`, in each DTD's spelling:
//  - ECC: <single_bit>/<double_bit> with <total> (before DTD v11); <sram_correctable>,
//    <sram_uncorrectable>, <dram_correctable>, <dram_uncorrectable> (v11, v12); v13 splits SRAM
//    uncorrectable into <sram_uncorrectable_parity> and <sram_uncorrectable_secded>;
//  - retired pages (<multiple_single_bit_retirement>, <double_bit_retirement>, <pending_retirement>);
//  - remapped rows (<remapped_row_corr>, <remapped_row_unc>, <remapped_row_pending>, <remapped_row_failure>);
//  - clock event reasons (<clocks_event_reasons>, <clocks_throttle_reasons> before R535).
// A field nvidia-smi cannot read is absent, never zero.
import type { GpuHealthFacts } from '../core/snapshot.js'

type Node = Record<string, unknown>

export function parseGpuHealth(g: Node, text: (v: unknown) => string | undefined): GpuHealthFacts {
  const count = (v: unknown): number | undefined => {
    const s = text(v)
    return s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined
  }
  const yesNo = (v: unknown): boolean | undefined => {
    const s = text(v)?.toLowerCase()
    return s === 'yes' ? true : s === 'no' ? false : undefined
  }
  const active = (v: unknown): boolean | undefined => {
    const s = text(v)?.toLowerCase()
    return s === 'active' ? true : s === 'not active' ? false : undefined
  }
  const health: GpuHealthFacts = {}
  const ecc = node(g.ecc_errors)
  for (const scope of ['volatile', 'aggregate'] as const) {
    const e = node(ecc?.[scope])
    if (!e) continue
    const correctable = sum([count(node(e.single_bit)?.total), count(e.sram_correctable), count(e.dram_correctable)])
    const uncorrectable = sum([
      count(node(e.double_bit)?.total),
      count(e.sram_uncorrectable),
      count(e.sram_uncorrectable_parity),
      count(e.sram_uncorrectable_secded),
      count(e.dram_uncorrectable),
    ])
    if (correctable !== undefined || uncorrectable !== undefined) {
      health.ecc ??= {}
      health.ecc[scope] = {
        ...(correctable !== undefined && { correctable }),
        ...(uncorrectable !== undefined && { uncorrectable }),
      }
    }
  }
  const retired = node(g.retired_pages)
  if (retired) {
    const r = {
      singleBit: count(node(retired.multiple_single_bit_retirement)?.retired_count),
      doubleBit: count(node(retired.double_bit_retirement)?.retired_count),
      pending: yesNo(retired.pending_retirement),
    }
    if (Object.values(r).some((v) => v !== undefined)) health.retiredPages = defined(r)
  }
  const remap = node(g.remapped_rows)
  if (remap) {
    const r = {
      correctable: count(remap.remapped_row_corr),
      uncorrectable: count(remap.remapped_row_unc),
      pending: yesNo(remap.remapped_row_pending),
      failure: yesNo(remap.remapped_row_failure),
    }
    if (Object.values(r).some((v) => v !== undefined)) health.remappedRows = defined(r)
  }
  const events = node(g.clocks_event_reasons) ?? node(g.clocks_throttle_reasons)
  if (events) {
    const prefix = g.clocks_event_reasons ? 'clocks_event_reason_' : 'clocks_throttle_reason_'
    const r = {
      hwSlowdown: active(events[`${prefix}hw_slowdown`]),
      hwThermalSlowdown: active(events[`${prefix}hw_thermal_slowdown`]),
      hwPowerBrakeSlowdown: active(events[`${prefix}hw_power_brake_slowdown`]),
      swThermalSlowdown: active(events[`${prefix}sw_thermal_slowdown`]),
    }
    if (Object.values(r).some((v) => v !== undefined)) health.clockEvents = defined(r)
  }
  return health
}

function sum(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined)
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined
}

function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never
}

function node(v: unknown): Node | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined
}

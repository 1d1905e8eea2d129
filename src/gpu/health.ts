// GPU health, judged from the facts (pure), and the PCI count of NVIDIA GPUs from sysfs.
//  - failed: uncorrectable ECC errors since the driver loaded, or a row remapping failure (the GPU
//    needs a reset or service); for the host: nvidia-smi's "Driver/library version mismatch"
//    (every GPU container fails until the driver is reloaded or the host rebooted);
//  - degraded: a page retirement or row remapping pending (takes effect at the next reset),
//    uncorrectable errors in the lifetime count, a hardware or thermal clock slowdown active;
//  - a GPU on the PCI bus that nvidia-smi does not list (fell off the bus) is a host reason.
// Reasons are fixed codes, so they can be metric labels.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GpuDevice, GpuFacts } from '../core/snapshot.js'

export type HealthState = 'ok' | 'degraded' | 'failed'
export const HEALTH_STATES: HealthState[] = ['ok', 'degraded', 'failed']

export interface GpuHealth {
  index: number
  uuid: string
  state: HealthState
  reasons: string[]
}

export interface HostGpuHealth {
  state: HealthState
  /** host-wide reasons: driver_library_mismatch, gpus_missing */
  reasons: string[]
  advice?: string
  gpus: GpuHealth[]
}

const FAILED = ['ecc_uncorrectable_volatile', 'row_remap_failure']

export function judgeGpu(g: GpuDevice): GpuHealth {
  const h = g.health ?? {}
  const reasons: string[] = []
  if ((h.ecc?.volatile?.uncorrectable ?? 0) > 0) reasons.push('ecc_uncorrectable_volatile')
  if (h.remappedRows?.failure) reasons.push('row_remap_failure')
  if ((h.ecc?.aggregate?.uncorrectable ?? 0) > 0) reasons.push('ecc_uncorrectable_aggregate')
  if (h.remappedRows?.pending) reasons.push('row_remap_pending')
  if (h.retiredPages?.pending) reasons.push('retired_pages_pending')
  if (h.clockEvents?.hwSlowdown) reasons.push('hw_slowdown')
  if (h.clockEvents?.hwThermalSlowdown) reasons.push('hw_thermal_slowdown')
  if (h.clockEvents?.swThermalSlowdown) reasons.push('sw_thermal_slowdown')
  const state = reasons.some((r) => FAILED.includes(r)) ? 'failed' : reasons.length ? 'degraded' : 'ok'
  return { index: g.index, uuid: g.uuid, state, reasons }
}

/** nvidia-smi's words when the kernel module and the user-space library differ after an upgrade */
export function isDriverLibraryMismatch(reason: string | undefined): boolean {
  return reason !== undefined && /driver\/library version mismatch/i.test(reason)
}

export function judgeHost(facts: GpuFacts): HostGpuHealth {
  const gpus = facts.gpus.map(judgeGpu)
  const reasons: string[] = []
  let advice: string | undefined
  if (!facts.available && isDriverLibraryMismatch(facts.reason)) {
    reasons.push('driver_library_mismatch')
    advice =
      'the NVIDIA kernel module and library differ (a driver upgrade without reload): reboot or reload the driver'
  }
  if (facts.available && facts.expectedGpus !== undefined && facts.expectedGpus > facts.gpus.length) {
    reasons.push('gpus_missing')
    const missing = facts.expectedGpus - facts.gpus.length
    advice ??= `${missing} GPU(s) on the PCI bus are not listed by nvidia-smi (fallen off the bus?)`
  }
  const worst = (states: HealthState[]) =>
    states.includes('failed') ? 'failed' : states.includes('degraded') ? 'degraded' : 'ok'
  const state = reasons.length ? 'failed' : worst(gpus.map((g) => g.state))
  return { state, reasons, ...(advice && { advice }), gpus }
}

/** PCI class 0x0300xx (VGA) and 0x0302xx (3D controller): the classes NVIDIA GPUs use */
const GPU_CLASS = /^0x030[02]/i
export const NVIDIA_PCI_VENDOR = '0x10de'

/** NVIDIA GPUs on the PCI bus under a sysfs root; null when it cannot be read */
export async function countPciGpus(root = '/sys/bus/pci/devices'): Promise<number | null> {
  let devices: string[]
  try {
    devices = await readdir(root)
  } catch {
    return null
  }
  let n = 0
  for (const d of devices) {
    const [vendor, cls] = await Promise.all([
      readFile(join(root, d, 'vendor'), 'utf8').catch(() => ''),
      readFile(join(root, d, 'class'), 'utf8').catch(() => ''),
    ])
    if (vendor.trim().toLowerCase() === NVIDIA_PCI_VENDOR && GPU_CLASS.test(cls.trim())) n++
  }
  return n
}

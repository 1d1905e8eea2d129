// Pure parse of `nvidia-smi -q -x` into GpuFacts. nvidia-smi fills fields it cannot read with
// "N/A", "[N/A]", "[Not Supported]", "Requested functionality has been deprecated" and the like;
// such fields are left out (absent, not zero). From R610 the driver version is printed as
// <kmd_version> and <driver_version> may carry a deprecation note instead; both forms are read.
import { parseXmlTree, XmlTreeError } from './xml-tree.js'
import type { GpuDevice, GpuFacts, MigDevice } from '../core/snapshot.js'
import { parseGpuHealth } from './health-parse.js'

/** nvidia-smi printed something that is not its XML report */
export class NvidiaSmiParseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'NvidiaSmiParseError'
  }
}

/** elements read as lists even when nvidia-smi prints one */
export const LIST_ELEMENTS: ReadonlySet<string> = new Set(['gpu', 'mig_device', 'process_info'])

type Node = Record<string, unknown>

const MIB = 1024 * 1024

export function parseNvidiaSmiXml(full: string): GpuFacts {
  let doc: Node
  try {
    doc = parseXmlTree(withoutUnreadSections(full), LIST_ELEMENTS)
  } catch (err) {
    if (!(err instanceof XmlTreeError)) throw err
    throw new NvidiaSmiParseError(`nvidia-smi output is not valid XML (${err.message})`)
  }
  const log = doc.nvidia_smi_log
  if (!isNode(log)) throw new NvidiaSmiParseError('nvidia-smi output has no <nvidia_smi_log> element')
  const gpus = asArray(log.gpu)
    .filter(isNode)
    .map((g, index) => parseGpu(g, index))
  return {
    available: true,
    driverVersion: version(text(log.kmd_version)) ?? version(text(log.driver_version)),
    cudaVersion: version(text(log.cuda_version)) ?? version(text(log.cuda_umd_version)),
    gpus,
  }
}

/**
 * Each GPU's <supported_clocks> table (every graphics clock for every memory clock: a thousand
 * elements per GPU) is about three quarters of nvidia-smi's document, and nothing here reads it.
 * Cutting each complete table out before validating and parsing makes both about four times
 * cheaper; a table left open (a truncated document) is kept, so the strict parse still reports it.
 */
export function withoutUnreadSections(xml: string): string {
  const open = '<supported_clocks>'
  const close = '</supported_clocks>'
  let start = xml.indexOf(open)
  if (start < 0) return xml
  const parts: string[] = []
  let from = 0
  while (start >= 0) {
    const end = xml.indexOf(close, start + open.length)
    if (end < 0) break
    parts.push(xml.slice(from, start))
    // as many line breaks as were cut, so an error further on names the line of the document as printed
    let lines = 0
    for (let i = xml.indexOf('\n', start); i >= 0 && i < end; i = xml.indexOf('\n', i + 1)) lines++
    if (lines > 0) parts.push('\n'.repeat(lines))
    from = end + close.length
    start = xml.indexOf(open, from)
  }
  parts.push(xml.slice(from))
  return parts.join('')
}

/** nvidia-smi lists GPUs in its own index order (PCI bus order), so position is the index. */
function parseGpu(g: Node, index: number): GpuDevice {
  const memory = node(g.fb_memory_usage)
  const mig = node(g.mig_mode)
  const device: GpuDevice = {
    index,
    uuid: text(g.uuid) ?? '',
    name: text(g.product_name) ?? '',
    migDevices: asArray(node(g.mig_devices)?.mig_device).filter(isNode).map(parseMigDevice),
  }
  assign(device, 'productBrand', text(g.product_brand))
  assign(device, 'computeCapability', version(text(g.compute_cap)))
  assign(device, 'memoryTotalBytes', mib(memory?.total))
  assign(device, 'memoryUsedBytes', mib(memory?.used))
  const util = number(node(g.utilization)?.gpu_util, '%')
  assign(device, 'utilizationRatio', util === undefined ? undefined : util / 100)
  assign(device, 'temperatureCelsius', number(node(g.temperature)?.gpu_temp, 'C'))
  assign(device, 'powerDrawWatts', powerDraw(g))
  assign(device, 'migMode', text(mig?.current_mig))
  device.health = parseGpuHealth(g, text)
  const processes = asArray(node(g.processes)?.process_info)
    .filter(isNode)
    .flatMap((p) => {
      const pid = number(p.pid)
      if (pid === undefined) return []
      const used = mib(p.used_memory)
      return [used === undefined ? { pid } : { pid, usedMemoryBytes: used }]
    })
  if (processes.length > 0) device.processes = processes
  return device
}

function parseMigDevice(m: Node, position: number): MigDevice {
  const memory = node(m.fb_memory_usage)
  const device: MigDevice = { index: number(m.index) ?? position }
  assign(device, 'gpuInstanceId', number(m.gpu_instance_id))
  assign(device, 'computeInstanceId', number(m.compute_instance_id))
  assign(device, 'memoryTotalBytes', mib(memory?.total))
  assign(device, 'memoryUsedBytes', mib(memory?.used))
  return device
}

/** <power_readings><power_draw> up to DTD v11; <gpu_power_readings> with instant/average draw later */
function powerDraw(g: Node): number | undefined {
  for (const section of [node(g.gpu_power_readings), node(g.power_readings)]) {
    if (!section) continue
    for (const field of ['power_draw', 'instant_power_draw', 'average_power_draw']) {
      const w = number(section[field], 'W')
      if (w !== undefined) return w
    }
  }
  return undefined
}

/** The text of a leaf (or a CSV cell), or undefined when nvidia-smi says it has no value. */
export function text(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined
  const s = v.trim()
  if (s === '') return undefined
  const bare = s
    .replace(/^\[(.*)\]$/, '$1')
    .trim()
    .toLowerCase()
  if (UNAVAILABLE.some((u) => bare === u || bare.startsWith(u))) return undefined
  return s
}

// What nvidia-smi prints, bracketed or not, where it has no value to give.
const UNAVAILABLE = [
  'n/a',
  'not supported',
  'not available',
  'unknown error',
  'insufficient permissions',
  'gpu is lost',
  'gpu requires reset',
  'requested functionality has been deprecated',
  'deprecated',
  'no data',
  'not found',
]

function version(s: string | undefined): string | undefined {
  return s !== undefined && /^\d+(\.\d+)*$/.test(s) ? s : undefined
}

function number(v: unknown, unit?: string): number | undefined {
  const s = text(v)
  if (s === undefined) return undefined
  const m = /^(-?\d+(?:\.\d+)?)\s*(\S*)$/.exec(s)
  if (!m || (unit !== undefined && m[2] !== unit) || (unit === undefined && m[2] !== '')) return undefined
  return Number(m[1])
}

function mib(v: unknown): number | undefined {
  const n = number(v, 'MiB')
  return n === undefined ? undefined : Math.round(n * MIB)
}

function assign<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function node(v: unknown): Node | undefined {
  return isNode(v) ? v : undefined
}

function asArray(v: unknown): unknown[] {
  if (v === undefined || v === null) return []
  return Array.isArray(v) ? v : [v]
}

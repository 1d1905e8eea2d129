// Pure: systeminformation's output (osInfo, cpu, mem, system, blockDevices) into HostFacts. What it
// returns comes from files and commands of the host (os-release, /proc, DMI tables, lsblk) and is
// treated as untrusted text: each value is read by its type, cleaned of control characters, cut to
// a bound, and dropped when it is empty, a placeholder or out of range. Nothing else is kept.
import {
  HOST_BLOCK_DEVICES_MAX,
  HOST_PARTS,
  HOST_TEXT_MAX,
  type HostBlockDevice,
  type HostFacts,
  type HostPart,
} from './host-facts-schema.js'

/** what systeminformation answered, each part unknown until read; absent: that part failed */
export interface RawHostFacts {
  osInfo?: unknown
  cpu?: unknown
  mem?: unknown
  system?: unknown
  blockDevices?: unknown
  /** the parts that failed or timed out, and why */
  unavailable?: { part: HostPart; reason: string }[]
}

/** block device entries looked at: lsblk on a host with thousands of multipath or loop devices stays bounded */
const BLOCK_DEVICES_SCANNED = 10_000
const REASON_MAX = 500

/**
 * Loop devices (snap packages mount dozens of them, one per squashfs image) and RAM disks (ram*,
 * zram*: memory, not storage) are skipped: they are not where data lives, and would crowd the real
 * disks out of the bounded list.
 */
const SKIPPED_DEVICE = /^(loop|ram|zram)\d+$/

/** Node's names for the architecture as the kernel (`uname -m`) names them */
const ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' }

/** systeminformation fills what it cannot read with these */
const PLACEHOLDERS = new Set(['-', 'unknown', 'Unknown'])

/** Pure: a text value: control characters become spaces, runs of space one, cut to HOST_TEXT_MAX. */
export function boundedText(v: unknown, max = HOST_TEXT_MAX): string | undefined {
  if (typeof v !== 'string') return undefined
  let s = v
    .slice(0, max * 4)
    .replace(/\p{Cc}/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  if (s === '' || PLACEHOLDERS.has(s)) return undefined
  if (s.length > max) {
    s = s.slice(0, max)
    // never end on half of a surrogate pair
    if (/[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1)
    s = s.trimEnd()
  }
  return s
}

/** a whole number in [min, max], from a number or a numeric string; otherwise undefined */
function wholeNumber(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
}

const bytes = (v: unknown) => wholeNumber(v, 0, Number.MAX_SAFE_INTEGER)
const cores = (v: unknown) => wholeNumber(v, 1, 1_000_000)

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

/** drops the keys whose value is undefined, so an unknown fact is absent from the JSON */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/** Pure: one lsblk entry, or null when it has no usable name or is a device that is skipped. */
export function toBlockDevice(v: unknown): HostBlockDevice | null {
  const d = record(v)
  const name = boundedText(d.name)
  if (!name || SKIPPED_DEVICE.test(name) || d.type === 'loop') return null
  // A mount path cut short would name another path: one over the bound is dropped.
  const mount = typeof d.mount === 'string' && d.mount.length <= HOST_TEXT_MAX ? boundedText(d.mount) : undefined
  return defined({
    name,
    type: boundedText(d.type),
    sizeBytes: bytes(d.size),
    mount,
    fsType: boundedText(d.fsType),
    model: boundedText(d.model),
    label: boundedText(d.label),
  })
}

/** Pure: the host facts from what systeminformation answered, read at `readAt`. */
export function toHostFacts(raw: RawHostFacts, readAt: Date): HostFacts {
  const os = record(raw.osInfo)
  const cpu = record(raw.cpu)
  const mem = record(raw.mem)
  const system = record(raw.system)
  const arch = boundedText(os.arch)
  const devices: HostBlockDevice[] = []
  let omitted = 0
  const listed = Array.isArray(raw.blockDevices) ? raw.blockDevices.slice(0, BLOCK_DEVICES_SCANNED) : []
  for (const entry of listed) {
    const device = toBlockDevice(entry)
    if (!device) continue
    if (devices.length < HOST_BLOCK_DEVICES_MAX) devices.push(device)
    else omitted++
  }
  if (Array.isArray(raw.blockDevices)) omitted += Math.max(0, raw.blockDevices.length - BLOCK_DEVICES_SCANNED)
  return {
    readAt: readAt.toISOString(),
    os: defined({
      platform: boundedText(os.platform),
      distro: boundedText(os.distro),
      release: boundedText(os.release),
      codename: boundedText(os.codename),
      kernel: boundedText(os.kernel),
      arch: arch !== undefined ? (ARCH[arch] ?? arch) : undefined,
    }),
    cpu: defined({
      manufacturer: boundedText(cpu.manufacturer),
      brand: boundedText(cpu.brand),
      physicalCores: cores(cpu.physicalCores),
      cores: cores(cpu.cores),
    }),
    // 0 is what systeminformation answers when it could not read /proc/meminfo: not a total.
    memory: defined({ totalBytes: wholeNumber(mem.total, 1, Number.MAX_SAFE_INTEGER) }),
    system: defined({
      manufacturer: boundedText(system.manufacturer),
      model: boundedText(system.model),
      virtual: typeof system.virtual === 'boolean' ? system.virtual : undefined,
      virtualHost: boundedText(system.virtualHost),
    }),
    blockDevices: devices,
    blockDevicesOmitted: Math.min(omitted, 1_000_000),
    unavailable: (raw.unavailable ?? []).slice(0, HOST_PARTS.length).map((u) => ({
      part: u.part,
      reason: boundedText(u.reason, REASON_MAX) ?? 'failed',
    })),
  }
}

/** Pure: the facts in one line each for the OS, the CPU and the system, as `check` and metrics name them. */
export function hostSummary(h: HostFacts): { os: string; cpu: string; system: string } {
  const join = (...parts: (string | undefined)[]) => boundedText(parts.filter((p) => p !== undefined).join(' ')) ?? ''
  return {
    os: join(h.os.distro, h.os.release),
    cpu: join(h.cpu.manufacturer, h.cpu.brand),
    system: join(h.system.manufacturer, h.system.model),
  }
}

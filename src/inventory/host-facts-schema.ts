// The host facts beside the GPU facts: OS, kernel, CPU, memory, the system's maker and model, and
// the block devices. One shape for the agent (which maps systeminformation's output into it), the
// hello it sends, and the coordinator (which validates the hello against this schema and stores
// what it rebuilds from it). Every text is bounded and free of control characters, every number an
// integer in range, the device list short: a host's facts cannot grow a frame, a row or a label set.
import { z } from 'zod'

/** the longest text kept; longer values are cut to it (mount paths are dropped instead) */
export const HOST_TEXT_MAX = 200
/** block devices kept; the rest are counted in blockDevicesOmitted */
export const HOST_BLOCK_DEVICES_MAX = 64
/** the parts read, each on its own: one that fails or times out leaves the others */
export const HOST_PARTS = ['os', 'cpu', 'memory', 'system', 'blockDevices'] as const
export type HostPart = (typeof HOST_PARTS)[number]

const text = z
  .string()
  .min(1)
  .max(HOST_TEXT_MAX)
  .regex(/^\P{Cc}*$/u, 'must not hold control characters')
const count = z.number().int().min(1).max(1_000_000)
const bytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const hostBlockDeviceSchema = z.object({
  name: text,
  type: text.optional(),
  sizeBytes: bytes.optional(),
  mount: text.optional(),
  fsType: text.optional(),
  model: text.optional(),
  label: text.optional(),
})

// z.object, not strictObject: a field a newer agent adds is dropped, not a reason to refuse its hello.
export const hostFactsSchema = z.object({
  /** when systeminformation was read: at agent start and on each SIGHUP */
  readAt: z.iso.datetime({ offset: true }),
  os: z.object({
    platform: text.optional(),
    distro: text.optional(),
    release: text.optional(),
    codename: text.optional(),
    kernel: text.optional(),
    /** as `uname -m` names it: x86_64, aarch64 */
    arch: text.optional(),
  }),
  cpu: z.object({
    manufacturer: text.optional(),
    brand: text.optional(),
    physicalCores: count.optional(),
    /** logical cores (hardware threads) */
    cores: count.optional(),
  }),
  memory: z.object({ totalBytes: bytes.optional() }),
  system: z.object({
    manufacturer: text.optional(),
    model: text.optional(),
    virtual: z.boolean().optional(),
    virtualHost: text.optional(),
  }),
  blockDevices: z.array(hostBlockDeviceSchema).max(HOST_BLOCK_DEVICES_MAX),
  blockDevicesOmitted: z.number().int().min(0).max(1_000_000),
  /** the parts that could not be read, and why: the facts are partial */
  unavailable: z.array(z.object({ part: z.enum(HOST_PARTS), reason: z.string().max(500) })).max(HOST_PARTS.length),
})

export type HostFacts = z.infer<typeof hostFactsSchema>
export type HostBlockDevice = z.infer<typeof hostBlockDeviceSchema>

/** copies the fields that are set: an absent optional stays absent, rather than becoming undefined */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/**
 * The facts as the coordinator stores them: built field by field from a validated value, so
 * nothing of the frame but the fields named here is kept. Absent (an older agent): null.
 */
export function rebuildHostFacts(h: HostFacts | null | undefined): HostFacts | null {
  if (!h) return null
  const { os, cpu, memory, system } = h
  return {
    readAt: h.readAt,
    os: defined({
      platform: os.platform,
      distro: os.distro,
      release: os.release,
      codename: os.codename,
      kernel: os.kernel,
      arch: os.arch,
    }),
    cpu: defined({
      manufacturer: cpu.manufacturer,
      brand: cpu.brand,
      physicalCores: cpu.physicalCores,
      cores: cpu.cores,
    }),
    memory: defined({ totalBytes: memory.totalBytes }),
    system: defined({
      manufacturer: system.manufacturer,
      model: system.model,
      virtual: system.virtual,
      virtualHost: system.virtualHost,
    }),
    blockDevices: h.blockDevices.map((d) =>
      defined({
        name: d.name,
        type: d.type,
        sizeBytes: d.sizeBytes,
        mount: d.mount,
        fsType: d.fsType,
        model: d.model,
        label: d.label,
      }),
    ),
    blockDevicesOmitted: h.blockDevicesOmitted,
    unavailable: h.unavailable.map((u) => ({ part: u.part, reason: u.reason })),
  }
}

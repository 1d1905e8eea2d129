// HostSnapshot: the single picture of the host that collectors fill and that metrics, status and
// planners read. A scrape or a status call reads this; it never queries Docker or nvidia-smi.
import { EventEmitter } from 'node:events'
import { systemClock, type Clock } from './clock.js'
import type { HostFacts } from '../inventory/host-facts-schema.js'

/** the slow disk breakdown's kinds of space (src/inventory/disk-breakdown.ts measures them) */
export const DISK_KINDS = [
  'images_unique',
  'images_shared',
  'containers_running',
  'containers_stopped',
  'logs',
  'build_cache',
  'volumes_in_use',
  'volumes_dangling',
] as const
export type DiskKind = (typeof DISK_KINDS)[number]

export interface ContainerLog {
  id: string
  name: string
  state: string
  logBytes: number
}

export interface DiskBreakdown {
  /** when the runtime was asked (ISO) */
  takenAt: string
  /** how long the runtime's accounting took */
  durationSeconds: number
  bytes: Record<DiskKind, number>
  /** every image layer once (`docker system df`'s images size): images_unique + images_shared */
  imagesBytes: number
  /** the containers with the largest logs, largest first */
  topLogs: ContainerLog[]
  /** every container whose log is over disk.logWarnBytes, largest first; empty when that is off */
  largeLogs: ContainerLog[]
}

/** the NVIDIA runtime as src/compat/nvidia-runtime.ts judges it */
export interface NvidiaRuntimeFacts {
  /** an NVIDIA runtime is registered with Docker or its config file exists */
  installed: boolean
  /** Docker's runtimes whose name contains "nvidia" */
  dockerRuntimes: string[]
  defaultRuntime: string | null
  /** `mode` of [nvidia-container-runtime] in config.toml; "auto" (the toolkit's default) when unset */
  mode: string | null
  /** what the mode amounts to here: legacy, csv, cdi, jit-cdi, or unknown */
  effectiveMode: string
  toolkitVersion: string | null
  cdiSpecs: string[]
  /** the runtime itself refuses a container whose NVIDIA_REQUIRE_* does not hold */
  enforced: boolean
  reason: string
}

export interface MigDevice {
  index: number
  gpuInstanceId?: number
  computeInstanceId?: number
  memoryTotalBytes?: number
  memoryUsedBytes?: number
}

/** health readings of one GPU from `nvidia-smi -q -x`; a reading nvidia-smi cannot give is absent */
export interface GpuHealthFacts {
  /** ECC error counts: volatile (since the last driver load) and aggregate (lifetime) */
  ecc?: Partial<Record<'volatile' | 'aggregate', { correctable?: number; uncorrectable?: number }>>
  retiredPages?: { singleBit?: number; doubleBit?: number; pending?: boolean }
  remappedRows?: { correctable?: number; uncorrectable?: number; pending?: boolean; failure?: boolean }
  clockEvents?: {
    hwSlowdown?: boolean
    hwThermalSlowdown?: boolean
    hwPowerBrakeSlowdown?: boolean
    swThermalSlowdown?: boolean
  }
}

export interface GpuDevice {
  index: number
  uuid: string
  name: string
  /** nvidia-smi's product_brand as printed, e.g. "Tesla", "GeForce", "NVIDIA RTX". */
  productBrand?: string
  /** compute capability "8.0" from `nvidia-smi --query-gpu=compute_cap` (arch in NVIDIA_REQUIRE_* terms) */
  computeCapability?: string
  memoryTotalBytes?: number
  memoryUsedBytes?: number
  utilizationRatio?: number
  temperatureCelsius?: number
  powerDrawWatts?: number
  migMode?: string
  migDevices: MigDevice[]
  health?: GpuHealthFacts
  /** processes holding GPU memory (nvidia-smi's <processes>), with their container when in one */
  processes?: GpuProcess[]
}

export interface GpuProcess {
  pid: number
  usedMemoryBytes?: number
  /** the Docker container the pid belongs to (/proc/PID/cgroup); absent when in none */
  containerId?: string
}

export interface GpuFacts {
  available: boolean
  /** why the facts are unavailable: no nvidia-smi, it failed, it timed out, it printed garbage */
  reason?: string
  driverVersion?: string
  cudaVersion?: string
  /** why some GPU's compute capability is unknown (a driver whose nvidia-smi lacks compute_cap) */
  computeCapabilityUnknown?: string
  /** NVIDIA display/3D controllers on the PCI bus (sysfs); absent when sysfs could not be read */
  expectedGpus?: number
  gpus: GpuDevice[]
}

export interface DiskFacts {
  /** the path measured: Docker's root dir or disk.path */
  path: string
  mountpoint: string
  sizeBytes: number
  usedBytes: number
  availBytes: number
  usedPercent: number
}

export interface ContainerRef {
  id: string
  name: string
  state: string
}

export interface ImageCompat {
  /** null: no requirement, not inspected, no GPU facts, or undecidable (see unknown) */
  compatible: boolean | null
  reason: string
  requirement: string | null
  /** set when compatible is null because a requirement depends on a fact this host does not know */
  unknown?: string[]
  /** kernel coverage from TORCH_CUDA_ARCH_LIST against every GPU's compute capability (src/compat/kernels.ts) */
  kernels?: 'ok' | 'missing' | 'unknown'
  kernelsReason?: string
  /** present (true) when no GPU of the host has a kernel for the image */
  kernelsMissingOnEveryGpu?: true
  /** whether NVIDIA's runtime on this host would itself refuse the container when compatible is false */
  enforced?: boolean
}

export interface ImageFacts {
  id: string
  repoTags: string[]
  repoDigests: string[]
  sizeBytes: number
  /** bytes of layers shared with other images; -1 when Docker did not say */
  sharedSizeBytes: number
  createdAt: string
  /** containers, running or not, that use this image */
  containers: ContainerRef[]
  dangling: boolean
  /** last time a container used it (ISO), null if never seen used */
  lastUsed: string | null
  /** first time the agent saw it (ISO) */
  firstSeen: string
  /**
   * CUDA-relevant env of the image config (NVIDIA_REQUIRE_*, NVIDIA_DISABLE_REQUIRE, CUDA_VERSION);
   * null until inspected
   */
  cudaEnv: Record<string, string> | null
  compat?: ImageCompat
  /** the image's labels; absent when it has none */
  labels?: Record<string, string>
  /** the runtime pins it (containerd: CRI `pinned`); never pruned */
  pinned?: boolean
}

export interface CollectorStatus {
  success: boolean
  durationSeconds: number
  at: string
  error?: string
  /** failed runs in a row, this one included; absent on success */
  failures?: number
}

export interface HostSnapshot {
  takenAt: string
  gpu: GpuFacts
  disk: DiskFacts | null
  /** where the space under the runtime's root went; absent until the slow breakdown has run */
  diskBreakdown?: DiskBreakdown | null
  /** null until the image collector has run once */
  images: ImageFacts[] | null
  /** the container runtime's health (the key keeps its first name); `kind`: docker | containerd */
  /** the container runtime (Docker or containerd, `kind`); `hint`: what to do while it is unreachable */
  docker: { reachable: boolean; reason?: string; hint?: string; rootDir?: string; version?: string; kind?: string }
  /** NVIDIA's container runtime on this host and whether it enforces NVIDIA_REQUIRE_*; null until read */
  nvidiaRuntime?: NvidiaRuntimeFacts | null
  /** OS, CPU, memory, system, block devices (inventory/host-facts.ts); null: not read yet; absent: not read here */
  host?: HostFacts | null
  collectors: Record<string, CollectorStatus>
}

export interface ImageSummary {
  count: number
  inUse: number
  unused: number
  dangling: number
  sizeBytes: number
  inUseSizeBytes: number
  unusedSizeBytes: number
  danglingSizeBytes: number
  cudaIncompatible: number
}

export type ImageState = 'in_use' | 'unused' | 'dangling'

export function imageState(image: ImageFacts): ImageState {
  if (image.containers.length > 0) return 'in_use'
  return image.dangling ? 'dangling' : 'unused'
}

export function summarizeImages(images: ImageFacts[]): ImageSummary {
  const s: ImageSummary = {
    count: 0,
    inUse: 0,
    unused: 0,
    dangling: 0,
    sizeBytes: 0,
    inUseSizeBytes: 0,
    unusedSizeBytes: 0,
    danglingSizeBytes: 0,
    cudaIncompatible: 0,
  }
  for (const image of images) {
    s.count++
    s.sizeBytes += image.sizeBytes
    const state = imageState(image)
    if (state === 'in_use') {
      s.inUse++
      s.inUseSizeBytes += image.sizeBytes
    } else if (state === 'dangling') {
      s.dangling++
      s.danglingSizeBytes += image.sizeBytes
    } else {
      s.unused++
      s.unusedSizeBytes += image.sizeBytes
    }
    if (image.compat?.compatible === false) s.cudaIncompatible++
  }
  return s
}

type SnapshotPart = Exclude<keyof HostSnapshot, 'takenAt' | 'collectors'>

/** Holds the current snapshot; collectors replace their part, readers get a consistent object. */
export class SnapshotStore extends EventEmitter {
  private current: HostSnapshot
  private collectorsRun = new Set<string>()
  private expectedCollectors: string[]

  constructor(
    expectedCollectors: string[] = [],
    private readonly now: Clock = systemClock,
  ) {
    super()
    this.expectedCollectors = [...expectedCollectors]
    this.current = {
      takenAt: now().toISOString(),
      gpu: { available: false, reason: 'not collected yet', gpus: [] },
      disk: null,
      images: null,
      docker: { reachable: false, reason: 'not collected yet' },
      collectors: {},
    }
  }

  get(): HostSnapshot {
    return this.current
  }

  set<K extends SnapshotPart>(part: K, value: HostSnapshot[K], at: Date = this.now()): void {
    this.current = { ...this.current, [part]: value, takenAt: at.toISOString() }
    this.emit('change', part)
  }

  recordCollector(name: string, status: CollectorStatus): void {
    this.collectorsRun.add(name)
    this.current = { ...this.current, collectors: { ...this.current.collectors, [name]: status } }
    this.emit('collected', name)
  }

  /** adds collectors that readiness waits for */
  expectCollectors(names: string[]): void {
    for (const name of names) if (!this.expectedCollectors.includes(name)) this.expectedCollectors.push(name)
  }

  /**
   * Resolves true once the collector `name` has run (at once when it already has), false when it
   * has not within `timeoutMs`.
   */
  collected(name: string, timeoutMs: number): Promise<boolean> {
    if (this.collectorsRun.has(name)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (ran: boolean) => {
        clearTimeout(timer)
        this.off('collected', onCollected)
        resolve(ran)
      }
      const onCollected = (which: string) => {
        if (which === name) done(true)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      timer.unref()
      this.on('collected', onCollected)
    })
  }

  /** true once every expected collector has run at least once (success or not) */
  ready(): boolean {
    return this.expectedCollectors.every((c) => this.collectorsRun.has(c))
  }
}

// `gpuhost check` and the agent's `check` action: GPU facts plus a CUDA verdict for each local
// image, or for each image asked for. Docker being unreachable is reported, never fatal: the GPU
// facts are still given. Images not on the host are looked up in their registry when a source is wired.
import type { KubeletGcReport } from '../prune/kubelet-gc.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { RemoteImageSource } from '../registry/types.js'
import type { GpuFacts, NvidiaRuntimeFacts } from '../core/snapshot.js'
import { brandToken } from './brand.js'
import { checkImageCompat, driverFacts } from './check.js'
import { cudaEnvFromList } from './image-requirements.js'
import { EXIT } from '../exit-codes.js'
import type { HostFacts } from '../inventory/host-facts-schema.js'

export interface CheckedImage {
  ref: string
  id: string | null
  requirement: string | null
  /** null: no requirement stated, not found, no GPU facts to judge by, or undecidable (see unknown) */
  compatible: boolean | null
  reason: string
  /** the conditions that depend on a fact this host does not know; present only then */
  unknown?: string[]
  /** will its kernels launch here: TORCH_CUDA_ARCH_LIST against every GPU's compute capability */
  kernels?: 'ok' | 'missing' | 'unknown'
  kernelsReason?: string
  /** present (true) when no GPU of the host has a kernel for the image */
  kernelsMissingOnEveryGpu?: true
  /** whether NVIDIA's runtime on this host would itself refuse the image when compatible is false */
  enforced: boolean
  /** where the image config came from */
  source?: 'local' | 'registry'
}

export interface GpuReport {
  available: boolean
  reason?: string
  driverVersion?: string
  cudaVersion?: string
  /** why a GPU's compute capability is unknown */
  computeCapabilityUnknown?: string
  gpus: {
    index: number
    uuid: string
    name: string
    brand?: string
    brandToken?: string
    computeCapability?: string
    memoryTotalBytes?: number
    memoryUsedBytes?: number
    migMode?: string
    migDevices: number
  }[]
}

export interface CheckReport {
  gpu: GpuReport
  nvidiaRuntime: NvidiaRuntimeFacts | null
  /** the container runtime (`kind`: docker or containerd); `hint`: what to do while it is unreachable */
  docker: { reachable: boolean; reason?: string; kind?: string; hint?: string }
  images: CheckedImage[]
  /** the kubelet's image GC thresholds and where gpuhost's prune races them (the command fills it) */
  kubelet?: KubeletGcReport
  /** OS, kernel, CPU, memory, system and block devices (the command fills it) */
  host?: HostFacts
}

function gpuReport(gpu: GpuFacts): GpuReport {
  const report: GpuReport = { available: gpu.available, gpus: [] }
  if (gpu.reason !== undefined) report.reason = gpu.reason
  if (gpu.driverVersion !== undefined) report.driverVersion = gpu.driverVersion
  // The CUDA version the runtime compares against, also when nvidia-smi is too old to print it.
  const cuda = gpu.available ? driverFacts(gpu).cudaVersion : gpu.cudaVersion
  if (cuda !== undefined) report.cudaVersion = cuda
  if (gpu.computeCapabilityUnknown !== undefined) report.computeCapabilityUnknown = gpu.computeCapabilityUnknown
  report.gpus = gpu.gpus.map((g) => ({
    index: g.index,
    uuid: g.uuid,
    name: g.name,
    brand: g.productBrand,
    brandToken: brandToken(g.productBrand),
    computeCapability: g.computeCapability,
    memoryTotalBytes: g.memoryTotalBytes,
    memoryUsedBytes: g.memoryUsedBytes,
    migMode: g.migMode,
    migDevices: g.migDevices.length,
  }))
  return report
}

export interface CheckInputs {
  /** a promise lets nvidia-smi run while Docker is asked */
  gpu: GpuFacts | Promise<GpuFacts>
  runtime: ContainerRuntime
  /** images to check; empty: every local image */
  refs: string[]
  remote?: RemoteImageSource | null
  /** the NVIDIA runtime facts; absent: not read */
  nvidiaRuntime?: NvidiaRuntimeFacts | null | Promise<NvidiaRuntimeFacts | null>
  /** what to do about the runtime's error when it is unreachable (src/runtime/unreachable-hint.ts) */
  unreachableHint?: (reason: string) => string | null
}

export async function buildCheckReport(inputs: CheckInputs): Promise<CheckReport> {
  const { runtime, refs, remote } = inputs
  const [gpu, dockerState, nvidiaRuntime] = await Promise.all([
    inputs.gpu,
    dockerReachable(runtime, inputs.unreachableHint),
    inputs.nvidiaRuntime ?? null,
  ])
  const report: CheckReport = { gpu: gpuReport(gpu), nvidiaRuntime, docker: dockerState, images: [] }
  if (refs.length === 0) {
    if (report.docker.reachable) report.images = await checkLocalImages(runtime, gpu)
  } else {
    for (const ref of refs) report.images.push(await checkRef(ref, report.docker, runtime, gpu, remote ?? null))
  }
  // Whether NVIDIA's runtime itself would refuse: the same answer for every image on this host.
  for (const image of report.images) image.enforced = nvidiaRuntime?.enforced ?? false
  return report
}

async function dockerReachable(
  runtime: ContainerRuntime,
  hintFor: CheckInputs['unreachableHint'],
): Promise<CheckReport['docker']> {
  try {
    await runtime.ping()
    return { reachable: true, kind: runtime.kind }
  } catch (err) {
    // The runtime's error already says it is unreachable.
    const reason = (err as Error).message
    const hint = hintFor?.(reason)
    return { reachable: false, reason, kind: runtime.kind, ...(hint ? { hint } : {}) }
  }
}

async function checkLocalImages(runtime: ContainerRuntime, gpu: GpuFacts): Promise<CheckedImage[]> {
  const { images } = await runtime.listImagesWithContainers()
  const checked: CheckedImage[] = []
  for (const summary of images) {
    const ref = summary.repoTags[0] ?? summary.repoDigests[0] ?? summary.id
    try {
      const info = await runtime.inspectImage(summary.id)
      if (!info) throw new Error('removed meanwhile')
      checked.push(verdict(ref, info.id, info.env, gpu, 'local'))
    } catch (err) {
      const reason = `cannot inspect the image: ${(err as Error).message}`
      checked.push({ ref, id: summary.id, requirement: null, compatible: null, reason, enforced: false })
    }
  }
  return checked.sort((a, b) => a.ref.localeCompare(b.ref))
}

async function checkRef(
  ref: string,
  dockerState: CheckReport['docker'],
  runtime: ContainerRuntime,
  gpu: GpuFacts,
  remote: RemoteImageSource | null,
): Promise<CheckedImage> {
  // With the engine away, whether the image is here is unknown, and the registry is not asked: a
  // verdict on the registry's image would stand in for one on this host's, and an air-gapped host
  // would wait on a registry it cannot reach to say what `docker` already says is wrong.
  if (!dockerState.reachable) {
    const engine = dockerState.kind === 'containerd' ? 'containerd' : 'Docker'
    return { ...notJudged(ref), reason: `${engine} unreachable: not looked up (nor asked of a registry)` }
  }
  try {
    const info = await runtime.inspectImage(ref)
    if (info) return verdict(ref, info.id, info.env, gpu, 'local')
  } catch (err) {
    return { ...notJudged(ref), reason: `cannot inspect the image: ${(err as Error).message}` }
  }
  if (!remote) return { ...notJudged(ref), reason: 'not present locally; registry lookup unavailable' }
  try {
    const image = await remote.inspectRemote(ref)
    return verdict(ref, image.digest, image.env, gpu, 'registry')
  } catch (err) {
    return { ...notJudged(ref), reason: `not present locally; registry lookup failed: ${(err as Error).message}` }
  }
}

/** an image with no verdict: not found, not inspectable */
function notJudged(ref: string): Omit<CheckedImage, 'reason'> {
  return { ref, id: null, requirement: null, compatible: null, enforced: false }
}

function verdict(
  ref: string,
  id: string,
  env: string[] | undefined | null,
  gpu: GpuFacts,
  source: 'local' | 'registry',
): CheckedImage {
  const compat = checkImageCompat(cudaEnvFromList(env), gpu)
  const { requirement, compatible, reason } = compat
  const checked: CheckedImage = { ref, id, requirement, compatible, reason, source, enforced: false }
  if (compat.unknown) checked.unknown = compat.unknown
  if (compat.kernels !== undefined) checked.kernels = compat.kernels
  if (compat.kernelsReason !== undefined) checked.kernelsReason = compat.kernelsReason
  if (compat.kernelsMissingOnEveryGpu) checked.kernelsMissingOnEveryGpu = true
  return checked
}

/**
 * 69 when Docker is unreachable; 1 when an image is incompatible or has a kernel for no GPU of the
 * host; 2 when a verdict depends on a fact this host does not know (never a silent yes); else 0.
 */
export function checkExitCode(report: CheckReport): number {
  if (!report.docker.reachable) return EXIT.unavailable
  if (report.images.some((i) => i.compatible === false || i.kernelsMissingOnEveryGpu)) return EXIT.no
  return report.images.some((i) => i.unknown !== undefined) ? EXIT.undecided : EXIT.ok
}

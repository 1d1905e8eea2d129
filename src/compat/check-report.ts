// `gpuhost check` and the agent's `check` action: GPU facts plus a CUDA verdict for each local
// image, or for each image asked for. Docker being unreachable is reported, never fatal: the GPU
// facts are still given. Images not on the host are looked up in their registry when a source is wired.
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { RemoteImageSource } from '../registry/types.js'
import type { GpuFacts } from '../agent/snapshot.js'
import { brandToken } from './brand.js'
import { checkImageCompat, driverFacts } from './check.js'
import { cudaEnvFromList } from './image-requirements.js'
import { EXIT } from '../exit-codes.js'

export interface CheckedImage {
  ref: string
  id: string | null
  requirement: string | null
  /** null: no requirement stated, not found, or no GPU facts to judge by */
  compatible: boolean | null
  reason: string
  /** where the image config came from */
  source?: 'local' | 'registry'
}

export interface GpuReport {
  available: boolean
  reason?: string
  driverVersion?: string
  cudaVersion?: string
  gpus: {
    index: number; uuid: string; name: string; brand?: string; brandToken?: string
    computeCapability?: string; memoryTotalBytes?: number; memoryUsedBytes?: number
    migMode?: string; migDevices: number
  }[]
}

export interface CheckReport {
  gpu: GpuReport
  docker: { reachable: boolean; reason?: string }
  images: CheckedImage[]
}

function gpuReport(gpu: GpuFacts): GpuReport {
  const report: GpuReport = { available: gpu.available, gpus: [] }
  if (gpu.reason !== undefined) report.reason = gpu.reason
  if (gpu.driverVersion !== undefined) report.driverVersion = gpu.driverVersion
  // The CUDA version the runtime compares against, also when nvidia-smi is too old to print it.
  const cuda = gpu.available ? driverFacts(gpu).cudaVersion : gpu.cudaVersion
  if (cuda !== undefined) report.cudaVersion = cuda
  report.gpus = gpu.gpus.map((g) => ({
    index: g.index, uuid: g.uuid, name: g.name, brand: g.productBrand, brandToken: brandToken(g.productBrand),
    computeCapability: g.computeCapability, memoryTotalBytes: g.memoryTotalBytes, memoryUsedBytes: g.memoryUsedBytes,
    migMode: g.migMode, migDevices: g.migDevices.length,
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
}

export async function buildCheckReport(inputs: CheckInputs): Promise<CheckReport> {
  const { runtime, refs, remote } = inputs
  const [gpu, dockerState] = await Promise.all([inputs.gpu, dockerReachable(runtime)])
  const report: CheckReport = { gpu: gpuReport(gpu), docker: dockerState, images: [] }
  if (refs.length === 0) {
    if (report.docker.reachable) report.images = await checkLocalImages(runtime, gpu)
    return report
  }
  for (const ref of refs) report.images.push(await checkRef(ref, report.docker, runtime, gpu, remote ?? null))
  return report
}

async function dockerReachable(runtime: ContainerRuntime): Promise<CheckReport['docker']> {
  try {
    await runtime.ping()
    return { reachable: true }
  } catch (err) {
    // The runtime's error already says it is unreachable.
    return { reachable: false, reason: (err as Error).message }
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
      checked.push({ ref, id: summary.id, requirement: null, compatible: null, reason })
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
  if (dockerState.reachable) {
    try {
      const info = await runtime.inspectImage(ref)
      if (info) return verdict(ref, info.id, info.env, gpu, 'local')
    } catch (err) {
      const reason = `cannot inspect the image: ${(err as Error).message}`
      return { ref, id: null, requirement: null, compatible: null, reason }
    }
  }
  const where = dockerState.reachable ? 'not present locally' : 'Docker unreachable'
  if (!remote) return { ref, id: null, requirement: null, compatible: null, reason: `${where}; registry lookup unavailable` }
  try {
    const image = await remote.inspectRemote(ref)
    return verdict(ref, image.digest, image.env, gpu, 'registry')
  } catch (err) {
    return { ref, id: null, requirement: null, compatible: null, reason: `${where}; registry lookup failed: ${(err as Error).message}` }
  }
}

function verdict(ref: string, id: string, env: string[] | undefined | null, gpu: GpuFacts, source: 'local' | 'registry'): CheckedImage {
  const compat = checkImageCompat(cudaEnvFromList(env), gpu)
  return { ref, id, requirement: compat.requirement, compatible: compat.compatible, reason: compat.reason, source }
}

/** 69 when Docker is unreachable, 1 when an image is incompatible, else 0 */
export function checkExitCode(report: CheckReport): number {
  if (!report.docker.reachable) return EXIT.unavailable
  return report.images.some((i) => i.compatible === false) ? EXIT.no : EXIT.ok
}

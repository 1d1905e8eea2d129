// The verdict for one image on this host: what NVIDIA's container runtime would decide when the
// image starts with every GPU visible. Each stated requirement is evaluated for each GPU (brand and
// arch are per GPU, driver and CUDA version per host); the first failure decides, as in the runtime.
import type { GpuFacts, ImageCompat, NvidiaRuntimeFacts } from '../core/snapshot.js'
import { brandToken } from './brand.js'
import { cudaVersionForDriver } from './cuda-drivers.js'
import { ARCH_LIST_VARIABLE, kernelCoverage } from './kernels.js'
import { imageRequirements, type StatedRequirement } from './image-requirements.js'
import {
  evaluateRequirement,
  RequirementError,
  type DeviceFacts,
  type DriverFacts,
  type Evaluation,
} from './requirement.js'

export interface HostVerdict {
  /** null: the answer depends on a fact this host does not know; `unknown` says which */
  compatible: boolean | null
  reason: string
  /** the alternatives that held, one per requirement (for the last GPU evaluated) */
  matched: string[]
  /** the conditions that could not be decided and the fact each lacks */
  unknown?: string[]
}

/** The driver facts the runtime sees: nvidia-smi's CUDA version, else the one the table gives for the driver. */
export function driverFacts(gpu: Pick<GpuFacts, 'driverVersion' | 'cudaVersion'>): DriverFacts {
  const facts: DriverFacts = {}
  if (gpu.driverVersion !== undefined) facts.driverVersion = gpu.driverVersion
  const cuda =
    gpu.cudaVersion ??
    (gpu.driverVersion !== undefined ? (cudaVersionForDriver(gpu.driverVersion) ?? undefined) : undefined)
  if (cuda !== undefined) facts.cudaVersion = cuda
  return facts
}

function deviceFacts(gpu: GpuFacts): { label: string; device: DeviceFacts }[] {
  return gpu.gpus.map((g) => {
    const device: DeviceFacts = {}
    const brand = brandToken(g.productBrand)
    if (brand !== undefined) device.brand = brand
    if (g.computeCapability !== undefined) device.arch = g.computeCapability
    const arch = g.computeCapability ? `, compute capability ${g.computeCapability}` : ''
    return { label: `GPU ${g.index} (${g.name || g.uuid}${brand ? `, brand ${brand}` : ''}${arch})`, device }
  })
}

/**
 * Evaluates requirements on a host; throws RequirementError for an expression the runtime rejects.
 * A requirement that fails on any GPU decides "no", as in the runtime; else one that is unknown on
 * any GPU makes the verdict unknown (compatible null); else every requirement held on every GPU.
 */
export function evaluateOnHost(
  requirements: StatedRequirement[],
  driver: DriverFacts,
  devices: { label: string; device: DeviceFacts | null }[],
): HostVerdict {
  const targets = devices.length > 0 ? devices : [{ label: 'no GPU visible', device: null }]
  let matched: string[] = []
  const unknown: string[] = []
  for (const { label, device } of targets) {
    matched = []
    for (const r of requirements) {
      const result = evaluateRequirement(r.expression, driver, device)
      if (result.satisfied === false) {
        return {
          compatible: false,
          matched: [],
          reason: `${r.source} not met on ${label} with ${describeDriver(driver)}: ${whatFailed(result)}`,
        }
      }
      if (result.satisfied === null) {
        for (const u of result.unknown ?? []) {
          const line = `${r.source} on ${label}: ${u}`
          if (!unknown.includes(line)) unknown.push(line)
        }
      }
      if (result.matched !== undefined) matched.push(result.matched)
    }
  }
  if (unknown.length > 0) {
    const reason = `cannot tell with ${describeDriver(driver)}: ${unknown.join('; ')}`
    return { compatible: null, matched: [], unknown, reason }
  }
  const where = targets.length === 1 ? targets[0].label : `all ${targets.length} GPUs`
  const because = matched.length ? `: ${matched.join('; ')}` : ''
  return { compatible: true, matched, reason: `met on ${where} with ${describeDriver(driver)}${because}` }
}

function whatFailed(result: Evaluation): string {
  const others = (result.alternativesFailed ?? 1) - 1
  const first = result.failed ? `${result.failed} does not hold` : 'no condition holds'
  return others > 0 ? `${first}, nor does any of the ${others} other alternative${others === 1 ? '' : 's'}` : first
}

export function describeDriver(driver: DriverFacts): string {
  return `driver ${driver.driverVersion ?? 'unknown'}, CUDA ${driver.cudaVersion ?? 'unknown'}`
}

/**
 * The image's verdict on this host. compatible=null: no requirement, not inspected, no GPU facts, or
 * (with `unknown` set) a requirement that depends on a fact this host does not know.
 */
export function checkImageCompat(
  cudaEnv: Record<string, string> | null,
  gpu: GpuFacts,
  runtime?: NvidiaRuntimeFacts | null,
): ImageCompat {
  if (cudaEnv === null) return { compatible: null, reason: 'image config not inspected yet', requirement: null }
  const verdict = { ...admission(cudaEnv, gpu), ...kernels(cudaEnv, gpu) }
  // Only where the runtime was read: the coordinator judging another host's facts does not know it.
  return runtime === undefined ? verdict : { ...verdict, enforced: runtime?.enforced ?? false }
}

/** Kernel coverage beside the runtime's admission: will its kernels launch on every GPU here. */
type KernelFields = Pick<ImageCompat, 'kernels' | 'kernelsReason' | 'kernelsMissingOnEveryGpu'>

function kernels(cudaEnv: Record<string, string>, gpu: GpuFacts): KernelFields {
  if (!gpu.available) {
    return { kernels: 'unknown', kernelsReason: `no GPU facts: ${gpu.reason ?? 'unavailable'}` }
  }
  const labels = deviceFacts(gpu)
  const targets = gpu.gpus.map((g, i) => ({ label: labels[i].label, computeCapability: g.computeCapability }))
  const coverage = kernelCoverage(cudaEnv, targets)
  const declared = cudaEnv[ARCH_LIST_VARIABLE] !== undefined
  const capUnknown = gpu.computeCapabilityUnknown
  const why = coverage.kernels === 'unknown' && capUnknown && declared ? ` (${capUnknown})` : ''
  const out: KernelFields = { kernels: coverage.kernels, kernelsReason: coverage.reason + why }
  if (coverage.missingOnEveryGpu) out.kernelsMissingOnEveryGpu = true
  return out
}

/** What NVIDIA's runtime decides from the image's NVIDIA_REQUIRE_* and CUDA_VERSION. */
function admission(cudaEnv: Record<string, string>, gpu: GpuFacts): ImageCompat {
  let stated
  try {
    stated = imageRequirements(cudaEnv)
  } catch (err) {
    if (!(err instanceof RequirementError)) throw err
    return { compatible: false, reason: err.reason, requirement: cudaEnv.CUDA_VERSION ?? null }
  }
  if (stated.disabled) {
    return {
      compatible: null,
      reason: `NVIDIA_DISABLE_REQUIRE=${cudaEnv.NVIDIA_DISABLE_REQUIRE} switches the runtime's requirement checks off`,
      requirement: null,
    }
  }
  if (stated.requirements.length === 0) return { compatible: null, reason: 'no CUDA requirement', requirement: null }
  const requirement = stated.requirements.map((r) => r.expression).join('; ')
  if (!gpu.available) return { compatible: null, reason: `no GPU facts: ${gpu.reason ?? 'unavailable'}`, requirement }
  try {
    const verdict = evaluateOnHost(stated.requirements, driverFacts(gpu), deviceFacts(gpu))
    if (verdict.compatible !== null) return { compatible: verdict.compatible, reason: verdict.reason, requirement }
    // Say why a fact is unknown where the collector knows: an nvidia-smi without compute_cap.
    const why =
      gpu.computeCapabilityUnknown && verdict.unknown?.some((u) => u.includes('compute capability'))
        ? ` (${gpu.computeCapabilityUnknown})`
        : ''
    return { compatible: null, reason: verdict.reason + why, requirement, unknown: verdict.unknown ?? [] }
  } catch (err) {
    if (!(err instanceof RequirementError)) throw err
    // The runtime answers "invalid expression" and the container does not start.
    return { compatible: false, reason: err.message, requirement }
  }
}

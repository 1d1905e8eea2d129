// The verdict for one image on this host: what NVIDIA's container runtime would decide when the
// image starts with every GPU visible. Each stated requirement is evaluated for each GPU (brand and
// arch are per GPU, driver and CUDA version per host); the first failure decides, as in the runtime.
import type { GpuFacts, ImageCompat } from '../agent/snapshot.js'
import { brandToken } from './brand.js'
import { cudaVersionForDriver } from './cuda-drivers.js'
import { imageRequirements, type StatedRequirement } from './image-requirements.js'
import { evaluateRequirement, RequirementError, type DeviceFacts, type DriverFacts, type Evaluation } from './requirement.js'

export interface HostVerdict {
  compatible: boolean
  reason: string
  /** the alternatives that held, one per requirement (for the last GPU evaluated) */
  matched: string[]
}

/** The driver facts the runtime sees: nvidia-smi's CUDA version, else the one the table gives for the driver. */
export function driverFacts(gpu: Pick<GpuFacts, 'driverVersion' | 'cudaVersion'>): DriverFacts {
  const facts: DriverFacts = {}
  if (gpu.driverVersion !== undefined) facts.driverVersion = gpu.driverVersion
  const cuda = gpu.cudaVersion ?? (gpu.driverVersion !== undefined ? cudaVersionForDriver(gpu.driverVersion) ?? undefined : undefined)
  if (cuda !== undefined) facts.cudaVersion = cuda
  return facts
}

function deviceFacts(gpu: GpuFacts): { label: string; device: DeviceFacts }[] {
  return gpu.gpus.map((g) => {
    const device: DeviceFacts = {}
    const brand = brandToken(g.productBrand)
    if (brand !== undefined) device.brand = brand
    if (g.computeCapability !== undefined) device.arch = g.computeCapability
    return { label: `GPU ${g.index} (${g.name || g.uuid}${brand ? `, brand ${brand}` : ''})`, device }
  })
}

/** Evaluates requirements on a host; throws RequirementError for an expression the runtime rejects. */
export function evaluateOnHost(requirements: StatedRequirement[], driver: DriverFacts, devices: { label: string; device: DeviceFacts | null }[]): HostVerdict {
  const targets = devices.length > 0 ? devices : [{ label: 'no GPU visible', device: null }]
  let matched: string[] = []
  for (const { label, device } of targets) {
    matched = []
    for (const r of requirements) {
      const result = evaluateRequirement(r.expression, driver, device)
      if (!result.satisfied) {
        return { compatible: false, matched: [], reason: `${r.source} not met on ${label} with ${describeDriver(driver)}: ${whatFailed(result)}` }
      }
      if (result.matched !== undefined) matched.push(result.matched)
    }
  }
  return { compatible: true, matched, reason: `met on ${targets.length === 1 ? targets[0].label : `all ${targets.length} GPUs`} with ${describeDriver(driver)}${matched.length ? `: ${matched.join('; ')}` : ''}` }
}

function whatFailed(result: Evaluation): string {
  const others = (result.alternativesFailed ?? 1) - 1
  const first = result.failed ? `${result.failed} does not hold` : 'no condition holds'
  return others > 0 ? `${first}, nor does any of the ${others} other alternative${others === 1 ? '' : 's'}` : first
}

export function describeDriver(driver: DriverFacts): string {
  return `driver ${driver.driverVersion ?? 'unknown'}, CUDA ${driver.cudaVersion ?? 'unknown'}`
}

/** The image's verdict on this host. compatible=null: no requirement, not inspected, or no GPU facts. */
export function checkImageCompat(cudaEnv: Record<string, string> | null, gpu: GpuFacts): ImageCompat {
  if (cudaEnv === null) return { compatible: null, reason: 'image config not inspected yet', requirement: null }
  let stated
  try {
    stated = imageRequirements(cudaEnv)
  } catch (err) {
    if (!(err instanceof RequirementError)) throw err
    return { compatible: false, reason: err.reason, requirement: cudaEnv.CUDA_VERSION ?? null }
  }
  if (stated.disabled) {
    return { compatible: null, reason: `NVIDIA_DISABLE_REQUIRE=${cudaEnv.NVIDIA_DISABLE_REQUIRE} switches the runtime's requirement checks off`, requirement: null }
  }
  if (stated.requirements.length === 0) return { compatible: null, reason: 'no CUDA requirement', requirement: null }
  const requirement = stated.requirements.map((r) => r.expression).join('; ')
  if (!gpu.available) return { compatible: null, reason: `no GPU facts: ${gpu.reason ?? 'unavailable'}`, requirement }
  try {
    const verdict = evaluateOnHost(stated.requirements, driverFacts(gpu), deviceFacts(gpu))
    return { compatible: verdict.compatible, reason: verdict.reason, requirement }
  } catch (err) {
    if (!(err instanceof RequirementError)) throw err
    // The runtime answers "invalid expression" and the container does not start.
    return { compatible: false, reason: err.message, requirement }
  }
}

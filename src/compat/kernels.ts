// Kernel coverage: will the image's GPU code run on this host's GPUs, or fail at the first kernel
// launch with "no kernel image is available for execution on the device"? Admission by the runtime
// (NVIDIA_REQUIRE_*) does not tell; what the image was compiled for does. PyTorch images declare it
// in TORCH_CUDA_ARCH_LIST, as PyTorch's own builds read it (torch.utils.cpp_extension): entries
// "X.Y", "X.Y+PTX" or an architecture name, separated by spaces or semicolons.
//
// The rules, from NVIDIA's CUDA C++ Programming Guide ("Binary Compatibility", "PTX Compatibility")
// and the Blackwell/Hopper compatibility guides:
//  - a cubin for sm_XY runs on compute capability X.Z with Z >= Y (same major only);
//  - a cubin for an architecture-specific target (sm_90a) runs on exactly that capability;
//  - PTX for compute_XY is JIT-compiled by the driver for any capability >= X.Y ("+PTX").
// Pure: no Docker, no GPU.

export type KernelStatus = 'ok' | 'missing' | 'unknown'

/** a compiled target: a cubin (sass) or PTX, for major.minor, `specific` for an "a" target */
export interface KernelTarget {
  major: number
  minor: number
  ptx: boolean
  specific: boolean
}

export interface KernelCoverage {
  kernels: KernelStatus
  reason: string
  /** true when no GPU of the host is covered: the image cannot run its kernels here at all */
  missingOnEveryGpu: boolean
}

/** PyTorch's names for architectures (torch/utils/cpp_extension.py, named_arches) */
const NAMED_ARCHES: Record<string, string> = {
  'kepler+tesla': '3.7',
  kepler: '3.5+PTX',
  'maxwell+tegra': '5.3',
  maxwell: '5.0;5.2+PTX',
  pascal: '6.0;6.1+PTX',
  'volta+tegra': '7.2',
  volta: '7.0+PTX',
  turing: '7.5+PTX',
  'ampere+tegra': '8.7',
  ampere: '8.0;8.6+PTX',
  ada: '8.9+PTX',
  hopper: '9.0+PTX',
}

export const ARCH_LIST_VARIABLE = 'TORCH_CUDA_ARCH_LIST'

/** The targets of a TORCH_CUDA_ARCH_LIST value; throws Error with the entry it cannot read. */
export function parseArchList(list: string): KernelTarget[] {
  const targets: KernelTarget[] = []
  for (const entry of list.split(/[\s;]+/).filter((e) => e !== '')) {
    const named = NAMED_ARCHES[entry.toLowerCase()]
    if (named !== undefined) {
      targets.push(...parseArchList(named))
      continue
    }
    const m = /^(\d+)\.(\d+)([af]?)(\+PTX)?$/i.exec(entry)
    if (!m) throw new Error(`"${entry}" is not an architecture (X.Y, X.Y+PTX or a name such as Ampere)`)
    const major = Number(m[1])
    const minor = Number(m[2])
    const specific = m[3].toLowerCase() === 'a'
    targets.push({ major, minor, ptx: false, specific })
    if (m[4]) targets.push({ major, minor, ptx: true, specific })
  }
  if (targets.length === 0) throw new Error('the list is empty')
  return targets
}

/** Does one target run on a GPU of this compute capability? */
export function targetRunsOn(target: KernelTarget, cc: { major: number; minor: number }): boolean {
  if (target.specific) return cc.major === target.major && cc.minor === target.minor
  if (target.ptx) return cc.major > target.major || (cc.major === target.major && cc.minor >= target.minor)
  return cc.major === target.major && cc.minor >= target.minor
}

export function parseCapability(cc: string): { major: number; minor: number } | null {
  const m = /^(\d+)\.(\d+)$/.exec(cc)
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null
}

/**
 * Coverage of an image (its CUDA-relevant env) on GPUs with these compute capabilities (undefined:
 * unknown). `missing` as soon as one GPU lacks a kernel: with every GPU visible, work placed on it fails.
 */
export function kernelCoverage(
  env: Record<string, string>,
  gpus: { label: string; computeCapability?: string }[],
): KernelCoverage {
  const list = env[ARCH_LIST_VARIABLE]
  const none = (reason: string): KernelCoverage => ({ kernels: 'unknown', reason, missingOnEveryGpu: false })
  if (list === undefined) return none(`the image declares no ${ARCH_LIST_VARIABLE}`)
  let targets: KernelTarget[]
  try {
    targets = parseArchList(list)
  } catch (err) {
    return none(`${ARCH_LIST_VARIABLE}="${list}" cannot be read: ${(err as Error).message}`)
  }
  if (gpus.length === 0) return none('no GPU visible')
  const missing: string[] = []
  const unknown: string[] = []
  for (const gpu of gpus) {
    const cc = gpu.computeCapability === undefined ? null : parseCapability(gpu.computeCapability)
    if (cc === null) unknown.push(gpu.label)
    else if (!targets.some((target) => targetRunsOn(target, cc)))
      missing.push(`${gpu.label} (compute capability ${gpu.computeCapability})`)
  }
  const declared = `${ARCH_LIST_VARIABLE}="${list}"`
  if (missing.length > 0) {
    return {
      kernels: 'missing',
      reason: `${declared} has no kernel (cubin or PTX) for ${missing.join(', ')}: it fails at the first kernel launch`,
      missingOnEveryGpu: missing.length === gpus.length,
    }
  }
  if (unknown.length > 0) return none(`${declared}, but the compute capability of ${unknown.join(', ')} is unknown`)
  return {
    kernels: 'ok',
    reason: `${declared} covers ${gpus.length === 1 ? gpus[0].label : `all ${gpus.length} GPUs`}`,
    missingOnEveryGpu: false,
  }
}

// GET /v1/compat?image=REF: for every host, can its driver run REF, and why. Pure.
//
// Where an answer comes from, best first: the verdict the host itself reported for its local copy
// of the image; else the image's CUDA requirement (from any host that has it) put through the
// evaluator against this host's GPU facts; else the facts known and why no verdict is possible.
import { familiarRef } from '../registry/reference.js'
import type { GpuFacts } from '../core/snapshot.js'
import type { ReportedImage } from '../protocol.js'
import type { HostDetail } from './store/records.js'

export interface CompatVerdict {
  compatible: boolean | null
  reason: string
  /** kernel coverage (TORCH_CUDA_ARCH_LIST against the host's compute capabilities), when known */
  kernels?: 'ok' | 'missing' | 'unknown'
  kernelsReason?: string
  /** whether the host's NVIDIA runtime would itself refuse the image (as the host reported it) */
  enforced?: boolean
}

/** Decides whether an image with this CUDA-relevant env runs on a host with these GPU facts. */
export type CompatEvaluator = (cudaEnv: Record<string, string>, gpu: GpuFacts) => CompatVerdict

export interface HostCompat extends CompatVerdict {
  hostId: string
  connected: boolean
  driverVersion: string | null
  cudaVersion: string | null
  source: 'host' | 'coordinator' | 'none'
}

export interface FleetCompat {
  image: string
  requirement: { cudaEnv: Record<string, string>; reportedBy: string } | null
  evaluator: 'available' | 'unavailable'
  hosts: HostCompat[]
}

export function findImage(images: ReportedImage[] | null, ref: string): ReportedImage | null {
  if (!images) return null
  const want = familiarRef(ref)
  const named = (i: ReportedImage) => [...i.repoTags, ...i.repoDigests].some((r) => familiarRef(r) === want)
  return images.find((i) => i.id === want || named(i)) ?? null
}

export function fleetCompat(image: string, hosts: HostDetail[], evaluator: CompatEvaluator | null): FleetCompat {
  let requirement: FleetCompat['requirement'] = null
  for (const h of hosts) {
    const found = findImage(h.localImages, image)
    if (found?.cudaEnv) {
      requirement = { cudaEnv: found.cudaEnv, reportedBy: h.hostId }
      break
    }
  }
  return {
    image,
    requirement,
    evaluator: evaluator ? 'available' : 'unavailable',
    hosts: hosts.map((h) => ({
      hostId: h.hostId,
      connected: h.connected,
      ...gpuVersions(h),
      ...verdictFor(h, image, requirement, evaluator),
    })),
  }
}

function gpuVersions(h: HostDetail): { driverVersion: string | null; cudaVersion: string | null } {
  const gpu = (h.gpu ?? {}) as Partial<GpuFacts>
  return { driverVersion: gpu.driverVersion ?? null, cudaVersion: gpu.cudaVersion ?? null }
}

function verdictFor(
  h: HostDetail,
  image: string,
  requirement: FleetCompat['requirement'],
  evaluator: CompatEvaluator | null,
): CompatVerdict & { source: HostCompat['source'] } {
  const local = findImage(h.localImages, image)
  if (local?.compat) {
    const { compatible, reason, kernels, kernelsReason, enforced } = local.compat
    const verdict: CompatVerdict & { source: 'host' } = {
      compatible,
      reason: `reported by the host for its local copy: ${reason}`,
      source: 'host',
    }
    if (kernels !== undefined) Object.assign(verdict, { kernels, kernelsReason: kernelsReason ?? '' })
    if (enforced !== undefined) verdict.enforced = enforced
    return verdict
  }
  const gpu = h.gpu as GpuFacts | null
  if (!gpu || gpu.available !== true) {
    return {
      compatible: null,
      reason: `no GPU facts from this host${gpu?.reason ? `: ${gpu.reason}` : ''}`,
      source: 'none',
    }
  }
  const { driverVersion, cudaVersion } = gpuVersions(h)
  const facts = `driver ${driverVersion ?? 'unknown'}, CUDA ${cudaVersion ?? 'unknown'}`
  const cudaEnv = local?.cudaEnv ?? requirement?.cudaEnv ?? null
  if (!cudaEnv)
    return {
      compatible: null,
      reason: `no host has reported the CUDA requirement of ${image}; this host has ${facts}`,
      source: 'none',
    }
  if (!evaluator) {
    return {
      compatible: null,
      reason: `the compat evaluator is unavailable; the image asks ${describeEnv(cudaEnv)}; this host has ${facts}`,
      source: 'none',
    }
  }
  try {
    return { ...evaluator(cudaEnv, gpu), source: 'coordinator' }
  } catch (err) {
    return { compatible: null, reason: `the compat evaluator failed: ${(err as Error).message}`, source: 'none' }
  }
}

function describeEnv(env: Record<string, string>): string {
  const keys = Object.keys(env).sort()
  return keys.length ? keys.map((k) => `${k}=${env[k]}`).join(' ') : 'nothing (no CUDA requirement)'
}

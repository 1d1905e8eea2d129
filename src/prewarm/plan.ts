// The prewarm planner, pure: for each wanted image it decides present, pull, skip or fail, with
// the reason, from facts gathered beforehand (local images, the registry's manifest and config,
// the disk, the driver's verdict). Nothing here touches Docker, the network or the clock.
import { usableBytes, usedBytesAtPercent, usedPercent } from '../inventory/used-percent.js'
import type { DiskFacts, ImageCompat } from '../core/snapshot.js'
import { normalizeRegistryKey } from '../registry/credentials.js'
import { formatRef, parseImageRef, parseRepoDigest, type ImageRef } from '../registry/reference.js'
import type { RemoteImage } from '../registry/types.js'

export type PlanAction = 'present' | 'pull' | 'skip' | 'fail'

export interface LocalImage {
  id: string
  repoTags: string[]
  repoDigests: string[]
}

/** what the registry said instead of facts */
export interface RemoteFailure {
  error: string
  kind?: string
}

export interface PlanItem {
  ref: string
  action: PlanAction
  reason: string
  warnings: string[]
  remote?: RemoteImage
  /** bytes the pull is expected to add to the disk */
  estimatedBytes?: number
  /** set on a pull skipped for disk room: bytes to free so it fits under the high watermark */
  needBytes?: number
  /** why a skip: the driver cannot run the image, or it does not fit under the high watermark */
  skip?: 'incompatible' | 'disk'
}

export interface PrewarmPlanInput {
  wanted: string[]
  local: LocalImage[]
  /** registry facts per wanted reference, as written in `wanted` */
  remote: Map<string, RemoteImage | RemoteFailure>
  disk: DiskFacts | null
  /** prune.highPercent: a pull must leave usage at or below it */
  highPercent: number
  /** extracted ÷ compressed size (prewarm.expansionFactor) */
  expansionFactor: number
  /** the driver's verdict on an image's CUDA env (the compat evaluator, bound to this host's GPU facts) */
  compat: (cudaEnv: Record<string, string>) => ImageCompat
  /** mirrors per registry domain: a digest recorded under a mirror's name is the same image */
  mirrors?: Record<string, string[]>
  /** what a prune did to make room before this plan, for the reasons */
  prune?: { attempted: boolean; freedBytes: number; note?: string }
}

export interface PrewarmPlan {
  items: PlanItem[]
  /** bytes the planned pulls add, by estimate */
  plannedBytes: number
  /** bytes that would have to be freed for every pull skipped for room to fit as well */
  needBytes: number
}

const CUDA_ENV = /^(NVIDIA_REQUIRE_.+|NVIDIA_DISABLE_REQUIRE|CUDA_VERSION)$/

/** the CUDA-relevant part of an image config's Env, as the compat evaluator takes it */
export function cudaEnvOf(env: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of env) {
    const eq = entry.indexOf('=')
    const key = eq < 0 ? entry : entry.slice(0, eq)
    if (CUDA_ENV.test(key)) out[key] = eq < 0 ? '' : entry.slice(eq + 1)
  }
  return out
}

function isRemoteFailure(r: RemoteImage | RemoteFailure | undefined): r is RemoteFailure {
  return !!r && 'error' in r
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

export function planPrewarm(input: PrewarmPlanInput): PrewarmPlan {
  const items: PlanItem[] = []
  const seen = new Set<string>()
  let plannedBytes = 0
  let needBytes = 0
  for (const wanted of input.wanted) {
    let ref: ImageRef
    try {
      ref = parseImageRef(wanted)
    } catch (err) {
      items.push({ ref: wanted, action: 'fail', reason: (err as Error).message, warnings: [] })
      continue
    }
    const key = formatRef(ref)
    if (seen.has(key)) continue
    seen.add(key)
    const item = planOne(input, wanted, ref, plannedBytes)
    if (item.action === 'pull') plannedBytes += item.estimatedBytes ?? 0
    if (item.needBytes) needBytes = Math.max(needBytes, item.needBytes)
    items.push(item)
  }
  return { items, plannedBytes, needBytes }
}

function planOne(input: PrewarmPlanInput, wanted: string, ref: ImageRef, plannedBefore: number): PlanItem {
  const warnings = latestWarning(ref)
  const remote = input.remote.get(wanted)
  const local = findLocal(input, ref)
  if (!remote || isRemoteFailure(remote)) {
    const why = remote?.error ?? 'the registry was not asked'
    if (local.tagged)
      return {
        ref: wanted,
        action: 'present',
        reason: `present locally; the registry could not be checked for a newer digest: ${why}`,
        warnings,
      }
    return { ref: wanted, action: 'fail', reason: why, warnings }
  }
  const base = { ref: wanted, warnings, remote }
  const digests = [remote.digest, remote.indexDigest].filter((d): d is string => !!d)
  // The image ID is the config digest in dockerd's own store (the manifest's in the containerd
  // store): it identifies the image even when the RepoDigests entry went with a mirror's name.
  const ids = [remote.configDigest, ...digests].filter((d): d is string => !!d)
  const match = local.images.find((img) => ids.includes(img.id) || hasDigest(img, ref, digests, input.mirrors))
  if (match && (ref.tag === null || local.tagged === match)) {
    return { ...base, action: 'present', reason: `already present with digest ${remote.indexDigest ?? remote.digest}` }
  }
  const verdict = input.compat(cudaEnvOf(remote.env))
  if (verdict.compatible === false) {
    return {
      ...base,
      action: 'skip',
      skip: 'incompatible',
      reason: `the host's driver cannot run it: ${verdict.reason}`,
    }
  }
  const why = local.tagged
    ? `the tag now points at ${remote.indexDigest ?? remote.digest}, not the local image`
    : 'not present locally'
  return fitOnDisk(input, { ...base, action: 'pull', reason: why }, plannedBefore)
}

/** Skips a pull that would take the disk past the high watermark (after the pulls planned before it). */
function fitOnDisk(input: PrewarmPlanInput, item: PlanItem, plannedBefore: number): PlanItem {
  const remote = item.remote!
  const estimated = Math.ceil(remote.compressedBytes * input.expansionFactor)
  const out: PlanItem = { ...item, estimatedBytes: estimated }
  const disk = input.disk
  // df's Use%, as prune sees it (inventory/used-percent.ts)
  const usable = disk ? usableBytes(disk) : 0
  if (!disk || usable <= 0) {
    out.warnings = [...out.warnings, 'disk usage unknown: pulled without a room check']
    return out
  }
  const limit = highWatermarkBytes(disk, input.highPercent)
  const after = disk.usedBytes + plannedBefore + estimated
  const pruneNote =
    input.prune?.attempted && input.prune.freedBytes > 0
      ? `; a prune freed ${mib(input.prune.freedBytes)} first to make room`
      : ''
  if (after <= limit) return { ...out, reason: out.reason + pruneNote }
  const percentAfter = usedPercent({ usedBytes: after, availBytes: usable - after })
  const prune = input.prune?.note ? `; ${input.prune.note}` : ''
  const estimate = `≈${mib(estimated)}: ${mib(remote.compressedBytes)} compressed × ${input.expansionFactor}`
  return {
    ...out,
    action: 'skip',
    skip: 'disk',
    needBytes: after - limit,
    reason:
      `the disk would reach ${percentAfter.toFixed(1)}% after the pull (${estimate}), ` +
      `over prune.highPercent ${input.highPercent}%${prune}`,
  }
}

/** the used bytes at which usage reaches `percent` of the disk, in df's terms */
export function highWatermarkBytes(disk: DiskFacts, percent: number): number {
  return usedBytesAtPercent(disk, percent)
}

function latestWarning(ref: ImageRef): string[] {
  if (ref.digest || ref.tag !== 'latest') return []
  return [`${ref.original} uses the moving tag "latest": pin a version or a digest so every host runs the same image`]
}

/** local images of this repository, and the one that carries the wanted tag */
function findLocal(input: PrewarmPlanInput, ref: ImageRef): { images: LocalImage[]; tagged: LocalImage | null } {
  const tagged =
    ref.tag === null ? null : (input.local.find((img) => img.repoTags.some((t) => sameTag(t, ref))) ?? null)
  return { images: input.local, tagged }
}

function sameTag(repoTag: string, ref: ImageRef): boolean {
  try {
    const t = parseImageRef(repoTag)
    return t.domain === ref.domain && t.repository === ref.repository && t.tag === ref.tag
  } catch {
    return false
  }
}

/** a RepoDigests entry for this repository (on its registry or a mirror of it) with one of `digests` */
function hasDigest(img: LocalImage, ref: ImageRef, digests: string[], mirrors: Record<string, string[]> = {}): boolean {
  const mirrorsOf = Object.entries(mirrors)
    .filter(([k]) => normalizeRegistryKey(k) === ref.domain)
    .flatMap(([, v]) => v.map(normalizeRegistryKey))
  const domains = new Set([ref.domain, ...mirrorsOf])
  return img.repoDigests.some((entry) => {
    const d = parseRepoDigest(entry)
    return !!d && domains.has(d.domain) && d.repository === ref.repository && digests.includes(d.digest)
  })
}

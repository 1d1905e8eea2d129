// Living beside the kubelet's image garbage collection. On a Kubernetes node the kubelet removes
// images itself when the image filesystem passes imageGCHighThresholdPercent (down to
// imageGCLowThresholdPercent, least recently used first, never younger than imageMinimumGCAge) and,
// where set, any image unused for imageMaximumGCAge. gpuhost should act first, below the kubelet's
// high threshold, so the kubelet never has to; otherwise both remove images from the same disk
// by different orders, and the kubelet takes prewarmed images that are not pinned.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'

export interface KubeletImageGc {
  highPercent: number
  lowPercent: number
  /** seconds */
  minimumAgeSeconds: number
  /** seconds; 0: off */
  maximumAgeSeconds: number
}

/** the kubelet's own defaults (KubeletConfiguration v1beta1) for what its file leaves out */
export const KUBELET_GC_DEFAULTS: KubeletImageGc = {
  highPercent: 85,
  lowPercent: 80,
  minimumAgeSeconds: 120,
  maximumAgeSeconds: 0,
}

export interface KubeletGcReport {
  path: string
  /** false when there is no such file: no kubelet on this host, nothing to race */
  found: boolean
  error?: string
  thresholds?: KubeletImageGc
  warnings: string[]
}

const GO_UNITS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 }

/** a Go duration ("2m0s", "168h", "1.5h") in seconds; null when it is not one */
export function parseGoDuration(text: string): number | null {
  const s = text.trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/gy
  let total = 0
  let m: RegExpExecArray | null
  let consumed = 0
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * GO_UNITS[m[2]!]!
    consumed = re.lastIndex
  }
  return consumed === s.length && s.length > 0 ? total : null
}

/** Pure: the image GC settings of a kubelet config file's text; throws with a clear message on bad input */
export function parseKubeletGc(text: string): KubeletImageGc {
  const doc: unknown = parseYaml(text)
  if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) {
    throw new Error('not a KubeletConfiguration: the file is not a YAML mapping')
  }
  const c = (doc ?? {}) as Record<string, unknown>
  const percent = (key: string, fallback: number): number => {
    const v = c[key]
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100) {
      throw new Error(`${key} must be an integer from 0 to 100, not ${JSON.stringify(v)}`)
    }
    return v
  }
  const duration = (key: string, fallback: number): number => {
    const v = c[key]
    if (v === undefined || v === null) return fallback
    const seconds = typeof v === 'string' ? parseGoDuration(v) : null
    if (seconds === null) throw new Error(`${key} must be a duration such as "2m0s", not ${JSON.stringify(v)}`)
    return seconds
  }
  return {
    highPercent: percent('imageGCHighThresholdPercent', KUBELET_GC_DEFAULTS.highPercent),
    lowPercent: percent('imageGCLowThresholdPercent', KUBELET_GC_DEFAULTS.lowPercent),
    minimumAgeSeconds: duration('imageMinimumGCAge', KUBELET_GC_DEFAULTS.minimumAgeSeconds),
    maximumAgeSeconds: duration('imageMaximumGCAge', KUBELET_GC_DEFAULTS.maximumAgeSeconds),
  }
}

export interface GpuhostPrunePolicy {
  highPercent: number
  lowPercent: number
  maxUnusedSeconds: number | null
  /** the runtime pins prewarmed images (containerd), so the kubelet leaves them */
  pinsPrewarmed: boolean
}

/** Pure: where gpuhost's prune policy and the kubelet's image GC would race, in words */
export function kubeletRaces(kubelet: KubeletImageGc, gpuhost: GpuhostPrunePolicy): string[] {
  const warnings: string[] = []
  // 100 turns the kubelet's threshold GC off.
  if (kubelet.highPercent < 100) {
    if (gpuhost.highPercent >= kubelet.highPercent) {
      warnings.push(
        `prune.highPercent ${gpuhost.highPercent} is not below the kubelet's imageGCHighThresholdPercent ` +
          `${kubelet.highPercent}: the kubelet's GC starts first and removes images by its own order; ` +
          `set prune.highPercent below ${kubelet.highPercent}`,
      )
    }
    if (!gpuhost.pinsPrewarmed) {
      warnings.push(
        "this runtime does not pin prewarmed images: should usage reach the kubelet's high threshold, " +
          'its GC may remove them',
      )
    }
  }
  if (kubelet.maximumAgeSeconds > 0) {
    const mine = gpuhost.maxUnusedSeconds
    if (!gpuhost.pinsPrewarmed) {
      warnings.push(
        `the kubelet removes any image unused for imageMaximumGCAge (${kubelet.maximumAgeSeconds} s), ` +
          'prewarmed images included, since this runtime cannot pin them',
      )
    } else if (mine === null || mine > kubelet.maximumAgeSeconds) {
      warnings.push(
        `the kubelet removes unpinned images unused for imageMaximumGCAge (${kubelet.maximumAgeSeconds} s), ` +
          `before prune.maxUnusedSeconds (${mine === null ? 'off' : `${mine} s`}) would`,
      )
    }
  }
  return warnings
}

/** gpuhost's side of the comparison, from its config and runtime kind */
export function prunePolicyOf(
  config: { prune: { highPercent: number; lowPercent: number; maxUnusedSeconds: number | null } },
  runtimeKind: string,
): GpuhostPrunePolicy {
  return {
    highPercent: config.prune.highPercent,
    lowPercent: config.prune.lowPercent,
    maxUnusedSeconds: config.prune.maxUnusedSeconds,
    // containerd takes the CRI pinned label; Docker has no kubelet GC to race (no dockershim)
    pinsPrewarmed: runtimeKind === 'containerd',
  }
}

/** reads the kubelet's config file and compares; a missing file is no kubelet, a bad one is said */
export function checkKubeletGc(path: string, gpuhost: GpuhostPrunePolicy): KubeletGcReport {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { path, found: false, warnings: [] }
    return { path, found: false, error: (err as Error).message, warnings: [`cannot read ${path}: ${code}`] }
  }
  try {
    const thresholds = parseKubeletGc(text)
    return { path, found: true, thresholds, warnings: kubeletRaces(thresholds, gpuhost) }
  } catch (err) {
    const message = (err as Error).message
    return { path, found: true, error: message, warnings: [`${path}: ${message}`] }
  }
}

// Seeded generators of image sets, disks and policies for property tests and the planner benchmark.
import type { ImageFacts } from '../../src/core/snapshot.js'
import type { PlanInput } from '../../src/prune/plan-types.js'

/** mulberry32: a small, fast, seeded PRNG so every generated case can be replayed from its seed */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const REPOS = [
  'team/train',
  'team/serve',
  'nvidia/cuda',
  'keep/base',
  'ubuntu',
  'registry.local:5000/ml/torch',
  'pytorch/pytorch',
]
export const TAGS = ['latest', 'stable', '1.0', '1.1', '2.0', '12.2-runtime', 'nightly']
export const NOW = new Date('2026-11-01T12:00:00.000Z')
const HOUR = 3600_000
const MiB = 1024 * 1024
const GiB = 1024 * MiB

export interface Gen {
  r: () => number
  int(lo: number, hi: number): number
  pick<T>(xs: readonly T[]): T
  chance(p: number): boolean
}

export function gen(seed: number): Gen {
  const r = seededRandom(seed)
  return {
    r,
    int: (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(r() * xs.length)],
    chance: (p) => r() < p,
  }
}

function hex(g: Gen, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[g.int(0, 15)]
  return s
}

export function generateImage(g: Gen, now: Date = NOW): ImageFacts {
  const id = `sha256:${hex(g, 64)}`
  const tags = new Set<string>()
  const tagCount = g.chance(0.15) ? 0 : g.int(1, 3)
  for (let i = 0; i < tagCount; i++) tags.add(`${g.pick(REPOS)}:${g.pick(TAGS)}`)
  const digests =
    g.chance(0.3) || (tagCount === 0 && g.chance(0.5))
      ? [`${tags.size ? [...tags][0].replace(/:[^:/]+$/, '') : g.pick(REPOS)}@sha256:${hex(g, 64)}`]
      : []
  const sizeBytes = g.int(1, 2048) * MiB
  const sharedSizeBytes = g.chance(0.1) ? -1 : g.chance(0.5) ? 0 : g.int(0, sizeBytes)
  const created = now.getTime() - g.int(0, 400 * 24) * HOUR
  const firstSeenMs = g.chance(0.2)
    ? now.getTime() - g.int(0, 2 * 3600) * 1000
    : Math.max(created, now.getTime() - g.int(0, 90 * 24) * HOUR)
  const firstSeen = g.chance(0.02) ? 'not a time' : new Date(firstSeenMs).toISOString()
  const lastUsed = g.chance(0.35) ? null : new Date(firstSeenMs + g.r() * (now.getTime() - firstSeenMs)).toISOString()
  const containers = g.chance(0.15)
    ? Array.from({ length: g.int(1, 2) }, (_, i) => ({
        id: hex(g, 64),
        name: `c${i}`,
        state: g.pick(['running', 'exited', 'created']),
      }))
    : []
  return {
    id,
    repoTags: [...tags],
    repoDigests: digests,
    sizeBytes,
    sharedSizeBytes,
    createdAt: new Date(created).toISOString(),
    containers,
    dangling: tags.size === 0,
    lastUsed,
    firstSeen,
    cudaEnv: null,
  }
}

export function generateCase(seed: number, maxImages = 40): PlanInput {
  const g = gen(seed)
  const images = Array.from({ length: g.int(0, maxImages) }, () => generateImage(g))
  const protect: string[] = []
  if (g.chance(0.4)) protect.push('keep/*')
  if (g.chance(0.3)) protect.push('*:stable')
  if (g.chance(0.3)) protect.push('ubuntu')
  if (g.chance(0.3) && images.length > 0) protect.push(g.pick(images).id.slice(0, 7 + 12))
  const totalBytes = g.int(20, 400) * GiB
  const usedBytes = Math.floor(g.r() * totalBytes)
  const pullsInFlight = images.filter((i) => i.repoTags.length > 0 && g.chance(0.05)).map((i) => g.pick(i.repoTags))
  return {
    disk: { usedBytes, availBytes: totalBytes - usedBytes },
    images,
    policy: {
      lowPercent: g.int(5, 95),
      minAgeSeconds: g.pick([0, 600, 3600]),
      protect,
      keepPerRepository: g.pick([0, 0, 1, 2]),
    },
    now: NOW,
    targetPercent: g.chance(0.2) ? g.int(0, 100) : undefined,
    pullsInFlight,
  }
}

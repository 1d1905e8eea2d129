// ImageFacts for planner tests: 100 MiB, unused, first seen 30 days before `now`; `over` sets the rest.
import type { ImageFacts } from '../../src/core/snapshot.js'

const MiB = 1024 * 1024

export function imageFactsAt(now: Date) {
  const day = (n: number) => new Date(now.getTime() - n * 86400_000).toISOString()
  return (over: Partial<ImageFacts> & { id: string }): ImageFacts => ({
    repoTags: [],
    repoDigests: [],
    sizeBytes: 100 * MiB,
    sharedSizeBytes: 0,
    createdAt: day(100),
    containers: [],
    dangling: false,
    lastUsed: null,
    firstSeen: day(30),
    cudaEnv: null,
    ...over,
  })
}

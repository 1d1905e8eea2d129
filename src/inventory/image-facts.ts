// Pure: Docker's image and container lists (as the Engine API returns them) into ImageFacts.
// Everything here takes plain data and `now`, so the tests feed it lists captured from dockerd.
import { familiarRef } from '../registry/reference.js'
import type { ContainerRef, ImageFacts } from '../core/snapshot.js'

/** the fields of GET /images/json that the collector reads */
export interface ListedImage {
  Id: string
  RepoTags?: string[] | null
  RepoDigests?: string[] | null
  Size: number
  SharedSize?: number
  Created: number
  Labels?: Record<string, string> | null
  /** the runtime pins it (CRI `pinned`); not an Engine API field */
  Pinned?: boolean
}

/** the fields of GET /containers/json?all=1 that the collector reads */
export interface ListedContainer {
  Id: string
  Names?: string[] | null
  ImageID: string
  State: string
  Created: number
}

/** a container event remembered until the next refresh: which image it named, and when */
export interface ContainerUse {
  containerId: string
  /** the image as the event named it: a reference, a short or full id */
  image: string
  at: string
}

const CUDA_ENV = /^(NVIDIA_REQUIRE_[A-Z0-9_]+|NVIDIA_DISABLE_REQUIRE|CUDA_VERSION)$/

/** the CUDA-relevant entries of an image's Config.Env; an empty object when it has none */
export function cudaEnvOf(env: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of env ?? []) {
    const eq = entry.indexOf('=')
    const key = eq < 0 ? entry : entry.slice(0, eq)
    if (CUDA_ENV.test(key)) out[key] = eq < 0 ? '' : entry.slice(eq + 1)
  }
  return out
}

/** Docker before API 1.40 listed untagged images with the placeholder tag `<none>:<none>`. */
function realTags(tags: readonly string[] | null | undefined): string[] {
  return (tags ?? []).filter((t) => t !== '<none>:<none>')
}

function realDigests(digests: readonly string[] | null | undefined): string[] {
  return (digests ?? []).filter((d) => d !== '<none>@<none>')
}

const ZERO_TIME = /^0001-01-01/

/**
 * When a listed container last used its image, as far as the list (and the finish times read by
 * inspect) tell: running now; exited when it finished; never started: when it was created.
 */
export function containerUseTime(c: ListedContainer, finishedAt: string | undefined, now: string): string | null {
  switch (c.State) {
    case 'running':
    case 'paused':
    case 'restarting':
    case 'removing':
      return now
    case 'created':
      return new Date(c.Created * 1000).toISOString()
    default:
      if (finishedAt && !ZERO_TIME.test(finishedAt) && !Number.isNaN(Date.parse(finishedAt)))
        return new Date(finishedAt).toISOString()
      return new Date(c.Created * 1000).toISOString()
  }
}

/** the image id an event's image reference names, among the listed images; null when none */
export function resolveImageRef(ref: string, images: readonly ListedImage[]): string | null {
  if (ref.startsWith('sha256:')) return images.find((i) => i.Id === ref)?.Id ?? null
  // `docker.io/library/ubuntu:22.04`, `ubuntu` and `ubuntu:latest` name the same image.
  const wanted = familiarRef(ref)
  for (const image of images) {
    if (realTags(image.RepoTags).some((t) => familiarRef(t) === wanted)) return image.Id
    if (realDigests(image.RepoDigests).some((d) => familiarRef(d) === wanted)) return image.Id
  }
  // A short id (12+ hex digits) as `docker run 0123abcd…` leaves it in the event.
  if (/^[0-9a-f]{12,64}$/.test(ref)) return images.find((i) => i.Id.startsWith(`sha256:${ref}`))?.Id ?? null
  return null
}

/** per image id, the latest time any container (listed now, or seen in an event) used it */
export function imageUseTimes(
  images: readonly ListedImage[],
  containers: readonly ListedContainer[],
  finishedAt: ReadonlyMap<string, string>,
  events: readonly ContainerUse[],
  now: string,
): Map<string, string> {
  const used = new Map<string, string>()
  const note = (id: string | null, at: string | null) => {
    if (!id || !at) return
    const prev = used.get(id)
    if (!prev || Date.parse(at) > Date.parse(prev)) used.set(id, at)
  }
  const imageOfContainer = new Map(containers.map((c) => [c.Id, c.ImageID]))
  for (const c of containers) note(c.ImageID, containerUseTime(c, finishedAt.get(c.Id), now))
  for (const e of events) note(imageOfContainer.get(e.containerId) ?? resolveImageRef(e.image, images), e.at)
  return used
}

export interface FactsInputs {
  images: readonly ListedImage[]
  containers: readonly ListedContainer[]
  cudaEnv: ReadonlyMap<string, Record<string, string>>
  usage: (id: string) => { firstSeen: string; lastUsed: string | null } | undefined
  now: string
}

export function buildImageFacts(inp: FactsInputs): ImageFacts[] {
  const byImage = new Map<string, ContainerRef[]>()
  for (const c of inp.containers) {
    const refs = byImage.get(c.ImageID) ?? []
    refs.push({ id: c.Id, name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''), state: c.State })
    byImage.set(c.ImageID, refs)
  }
  return inp.images.map((image) => {
    const repoTags = realTags(image.RepoTags)
    const usage = inp.usage(image.Id)
    return {
      id: image.Id,
      repoTags,
      repoDigests: realDigests(image.RepoDigests),
      sizeBytes: image.Size,
      sharedSizeBytes: typeof image.SharedSize === 'number' ? image.SharedSize : -1,
      createdAt: new Date(image.Created * 1000).toISOString(),
      containers: byImage.get(image.Id) ?? [],
      dangling: repoTags.length === 0,
      lastUsed: usage?.lastUsed ?? null,
      firstSeen: usage?.firstSeen ?? inp.now,
      cudaEnv: inp.cudaEnv.get(image.Id) ?? null,
      ...(image.Labels && Object.keys(image.Labels).length > 0 && { labels: image.Labels }),
      ...(image.Pinned ? { pinned: true } : {}),
    }
  })
}

// Image collector: every image with its tags, digests, sizes, the containers that use it and its
// CUDA env. It lists images and containers (two cheap calls whatever the host holds), inspects an
// image only the first time its id appears (ids are immutable), and never asks for the runtime's
// disk accounting, which walks every layer on disk. Refreshes come from runtime events; the
// periodic run is a safety net.
import { systemClock, type Clock } from '../core/clock.js'
import pLimit from 'p-limit'
import {
  RuntimeUnavailableError,
  type ContainerRuntime,
  type RuntimeContainer,
  type RuntimeEvent,
  type RuntimeImage,
} from '../runtime/runtime.js'
import {
  buildImageFacts,
  cudaEnvOf,
  imageUseTimes,
  type ContainerUse,
  type ListedContainer,
  type ListedImage,
} from './image-facts.js'
import type { Collector } from '../core/collector.js'
import type { ImageFacts, SnapshotStore } from '../core/snapshot.js'
import type { UsageTracker } from './usage.js'

/** inspects at once: enough to get through thousands of new images quickly, few enough for dockerd */
const INSPECT_CONCURRENCY = 4
/** container events kept between refreshes; a flood beyond this only loses the oldest use times */
const MAX_PENDING_USES = 10_000

export class ImageCollector implements Collector {
  readonly name = 'images'
  private readonly cudaEnv = new Map<string, Record<string, string>>()
  /** when the runtime says each image was last tagged: the first-seen time of an image with no record */
  private readonly tagTimes = new Map<string, string>()
  /** State.FinishedAt of exited containers; a container's `die` event drops its entry */
  private readonly finishedAt = new Map<string, string>()
  private pendingUses: ContainerUse[] = []
  private readonly limit = pLimit(INSPECT_CONCURRENCY)

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly usage: UsageTracker,
    private readonly store: SnapshotStore,
    private readonly now: Clock = systemClock,
  ) {}

  /** Remembers what a runtime event says about image use; true when it calls for a refresh. */
  noteEvent(e: RuntimeEvent): boolean {
    const containerId = e.id
    if (e.type === 'container' && containerId) {
      if (e.action === 'die' || e.action === 'destroy') this.finishedAt.delete(containerId)
      if (e.action === 'create' || e.action === 'start' || e.action === 'die') {
        const image = e.image
        if (image) this.pendingUses.push({ containerId, image, at: eventTime(e, this.now()) })
        if (this.pendingUses.length > MAX_PENDING_USES)
          this.pendingUses.splice(0, this.pendingUses.length - MAX_PENDING_USES)
      }
      return true
    }
    return e.type === 'image'
  }

  async collect(): Promise<void> {
    const uses = this.pendingUses
    this.pendingUses = []
    try {
      await this.collectWith(uses)
    } catch (err) {
      // What the events told us is kept for the next run.
      this.pendingUses = uses.concat(this.pendingUses).slice(-MAX_PENDING_USES)
      throw err
    }
  }

  private async collectWith(uses: ContainerUse[]): Promise<void> {
    const listed = await this.runtime.listImagesWithContainers()
    const images = listed.images.map(asListedImage)
    const containers = listed.containers.map(asListedContainer)
    await Promise.all([this.inspectNewImages(images), this.readFinishTimes(containers)])
    const now = this.now().toISOString()
    this.usage.reconcile(
      images.map((i) => i.Id),
      imageUseTimes(images, containers, this.finishedAt, uses, now),
      this.tagTimes,
    )
    this.forgetGone(images, containers)
    const facts = buildImageFacts({ images, containers, cudaEnv: this.cudaEnv, usage: (id) => this.usage.get(id), now })
    this.store.set('images', keepCompat(facts, this.store.get().images))
  }

  private async inspectNewImages(images: ListedImage[]): Promise<void> {
    const fresh = images.filter((i) => !this.cudaEnv.has(i.Id))
    await Promise.all(
      fresh.map((i) =>
        this.limit(async () => {
          try {
            const info = await this.runtime.inspectImage(i.Id)
            // Removed since the list (null): nothing to record.
            if (!info) return
            this.cudaEnv.set(i.Id, cudaEnvOf(info.env))
            if (info.lastTagTime) this.tagTimes.set(i.Id, info.lastTagTime)
          } catch (err) {
            // cudaEnv stays null and the next refresh asks again.
            if (err instanceof RuntimeUnavailableError) throw err
          }
        }),
      ),
    )
  }

  /** only exited containers not read before: their finish time is when they last used the image */
  private async readFinishTimes(containers: ListedContainer[]): Promise<void> {
    const unread = containers.filter((c) => (c.State === 'exited' || c.State === 'dead') && !this.finishedAt.has(c.Id))
    await Promise.all(
      unread.map((c) =>
        this.limit(async () => {
          try {
            const finishedAt = await this.runtime.containerFinishedAt(c.Id)
            if (finishedAt !== null) this.finishedAt.set(c.Id, finishedAt)
          } catch (err) {
            if (err instanceof RuntimeUnavailableError) throw err
          }
        }),
      ),
    )
  }

  private forgetGone(images: ListedImage[], containers: ListedContainer[]): void {
    const imageIds = new Set(images.map((i) => i.Id))
    for (const id of this.cudaEnv.keys()) if (!imageIds.has(id)) this.cudaEnv.delete(id)
    for (const id of this.tagTimes.keys()) if (!imageIds.has(id)) this.tagTimes.delete(id)
    const containerIds = new Set(containers.map((c) => c.Id))
    for (const id of this.finishedAt.keys()) if (!containerIds.has(id)) this.finishedAt.delete(id)
  }
}

function eventTime(e: RuntimeEvent, now: Date): string {
  return typeof e.atMs === 'number' ? new Date(e.atMs).toISOString() : now.toISOString()
}

// The pure image-facts code reads the Engine API's field names, as the captured lists it is tested
// with have them; a runtime's neutral lists are put in that form here.
function asListedImage(i: RuntimeImage): ListedImage {
  return {
    Id: i.id,
    RepoTags: i.repoTags,
    RepoDigests: i.repoDigests,
    Size: i.sizeBytes,
    SharedSize: i.sharedSizeBytes,
    Created: i.createdAt,
    Labels: i.labels ?? null,
    ...(i.pinned ? { Pinned: true } : {}),
  }
}

function asListedContainer(c: RuntimeContainer): ListedContainer {
  return { Id: c.id, Names: c.names, ImageID: c.imageId, State: c.state, Created: c.createdAt }
}

/** the CUDA verdicts that the compatibility check wrote stay with their image across refreshes */
function keepCompat(facts: ImageFacts[], previous: ImageFacts[] | null): ImageFacts[] {
  if (!previous?.some((i) => i.compat)) return facts
  const compat = new Map(previous.filter((i) => i.compat).map((i) => [i.id, i.compat]))
  return facts.map((f) => (compat.has(f.id) ? { ...f, compat: compat.get(f.id) } : f))
}

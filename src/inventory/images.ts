// Image collector: every image with its tags, digests, sizes, the containers that use it and its
// CUDA env. It lists images and containers (two cheap calls whatever the host holds), inspects an
// image only the first time its id appears (ids are immutable), and never calls /system/df, which
// walks every layer on disk. Refreshes come from Docker events; the periodic run is a safety net.
import { systemClock, type Clock } from '../agent/clock.js'
import pLimit from 'p-limit'
import type Docker from 'dockerode'
import { isConnectionError, type DockerConnection } from '../runtime/docker-connection.js'
import type { DockerEvent } from '../runtime/docker-events.js'
import {
  buildImageFacts, cudaEnvOf, imageUseTimes,
  type ContainerUse, type ListedContainer, type ListedImage,
} from './image-facts.js'
import type { Collector } from '../agent/collector.js'
import type { ImageFacts, SnapshotStore } from '../agent/snapshot.js'
import type { UsageTracker } from './usage.js'

/** inspects at once: enough to get through thousands of new images quickly, few enough for dockerd */
const INSPECT_CONCURRENCY = 4
/** container events kept between refreshes; a flood beyond this only loses the oldest use times */
const MAX_PENDING_USES = 10_000

export class ImageCollector implements Collector {
  readonly name = 'images'
  private readonly cudaEnv = new Map<string, Record<string, string>>()
  /** State.FinishedAt of exited containers; a container's `die` event drops its entry */
  private readonly finishedAt = new Map<string, string>()
  private pendingUses: ContainerUse[] = []
  private readonly limit = pLimit(INSPECT_CONCURRENCY)

  constructor(
    private readonly conn: DockerConnection,
    private readonly usage: UsageTracker,
    private readonly store: SnapshotStore,
    private readonly now: Clock = systemClock,
  ) {}

  /** Remembers what a Docker event says about image use; true when it calls for a refresh. */
  noteEvent(e: DockerEvent): boolean {
    const containerId = e.Actor?.ID ?? e.id
    if (e.Type === 'container' && containerId) {
      if (e.Action === 'die' || e.Action === 'destroy') this.finishedAt.delete(containerId)
      if (e.Action === 'create' || e.Action === 'start' || e.Action === 'die') {
        const image = e.Actor?.Attributes?.image ?? e.from
        if (image) this.pendingUses.push({ containerId, image, at: eventTime(e, this.now()) })
        if (this.pendingUses.length > MAX_PENDING_USES) this.pendingUses.splice(0, this.pendingUses.length - MAX_PENDING_USES)
      }
      return true
    }
    return e.Type === 'image'
  }

  async collect(): Promise<void> {
    const docker = await this.conn.client()
    const uses = this.pendingUses
    this.pendingUses = []
    try {
      await this.collectWith(docker, uses)
    } catch (err) {
      // What the events told us is kept for the next run.
      this.pendingUses = uses.concat(this.pendingUses).slice(-MAX_PENDING_USES)
      if (isConnectionError(err)) this.conn.markUnreachable(err as Error)
      throw err
    }
  }

  private async collectWith(docker: Docker, uses: ContainerUse[]): Promise<void> {
    const [images, containers] = await Promise.all([
      // shared-size is honoured from API 1.42 on; older daemons leave SharedSize at -1.
      docker.listImages({ 'shared-size': true } as Docker.ListImagesOptions) as Promise<ListedImage[]>,
      docker.listContainers({ all: true }) as Promise<ListedContainer[]>,
    ])
    await Promise.all([this.inspectNewImages(docker, images), this.readFinishTimes(docker, containers)])
    const now = this.now().toISOString()
    this.usage.reconcile(images.map((i) => i.Id), imageUseTimes(images, containers, this.finishedAt, uses, now))
    this.forgetGone(images, containers)
    const facts = buildImageFacts({ images, containers, cudaEnv: this.cudaEnv, usage: (id) => this.usage.get(id), now })
    this.store.set('images', keepCompat(facts, this.store.get().images))
  }

  private async inspectNewImages(docker: Docker, images: ListedImage[]): Promise<void> {
    const fresh = images.filter((i) => !this.cudaEnv.has(i.Id))
    await Promise.all(fresh.map((i) => this.limit(async () => {
      try {
        const info = await docker.getImage(i.Id).inspect()
        this.cudaEnv.set(i.Id, cudaEnvOf(info.Config?.Env))
      } catch (err) {
        // Removed since the list (404): nothing to record. Anything else: cudaEnv stays null and
        // the next refresh asks again.
        if (isConnectionError(err)) throw err
      }
    })))
  }

  /** only exited containers not read before: their finish time is when they last used the image */
  private async readFinishTimes(docker: Docker, containers: ListedContainer[]): Promise<void> {
    const unread = containers.filter((c) => (c.State === 'exited' || c.State === 'dead') && !this.finishedAt.has(c.Id))
    await Promise.all(unread.map((c) => this.limit(async () => {
      try {
        const info = await docker.getContainer(c.Id).inspect()
        this.finishedAt.set(c.Id, info.State.FinishedAt)
      } catch (err) {
        if (isConnectionError(err)) throw err
      }
    })))
  }

  private forgetGone(images: ListedImage[], containers: ListedContainer[]): void {
    const imageIds = new Set(images.map((i) => i.Id))
    for (const id of this.cudaEnv.keys()) if (!imageIds.has(id)) this.cudaEnv.delete(id)
    const containerIds = new Set(containers.map((c) => c.Id))
    for (const id of this.finishedAt.keys()) if (!containerIds.has(id)) this.finishedAt.delete(id)
  }
}

function eventTime(e: DockerEvent, now: Date): string {
  if (typeof e.timeNano === 'number') return new Date(Math.floor(e.timeNano / 1e6)).toISOString()
  if (typeof e.time === 'number') return new Date(e.time * 1000).toISOString()
  return now.toISOString()
}

/** the CUDA verdicts that the compatibility check wrote stay with their image across refreshes */
function keepCompat(facts: ImageFacts[], previous: ImageFacts[] | null): ImageFacts[] {
  if (!previous?.some((i) => i.compat)) return facts
  const compat = new Map(previous.filter((i) => i.compat).map((i) => [i.id, i.compat]))
  return facts.map((f) => (compat.has(f.id) ? { ...f, compat: compat.get(f.id) } : f))
}

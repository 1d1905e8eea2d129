// Keeps a CUDA verdict on every local image in the snapshot: whenever the GPU facts or the image
// list change, each image gets `compat`, and a `compat.changed` event says which verdicts flipped
// between compatible and incompatible. A spell without GPU facts (verdict null) is not a flip, so
// a flaky nvidia-smi does not flood the coordinator. Its own write of the image list changes
// nothing the second time round, so it does not loop.
import type { EventBus, EventMap } from '../core/events.js'
import { systemClock, type Clock } from '../core/clock.js'
import type { GpuFacts, ImageCompat, ImageFacts, SnapshotStore } from '../core/snapshot.js'
import type { Component } from '../core/lifecycle.js'
import { checkImageCompat } from './check.js'

export class CompatAnnotator implements Component {
  readonly name = 'compat-annotator'
  /** last known (true/false) verdict per image id, kept here because the image collector replaces the objects */
  private readonly verdicts = new Map<string, boolean>()
  private readonly onChange = (part: string) => {
    if (part === 'gpu' || part === 'images' || part === 'nvidiaRuntime') this.annotate()
  }

  constructor(
    private readonly store: SnapshotStore,
    private readonly bus: EventBus,
    private readonly now: Clock = systemClock,
  ) {}

  async start(): Promise<void> {
    this.store.on('change', this.onChange)
    this.annotate()
  }

  async stop(): Promise<void> {
    this.store.off('change', this.onChange)
  }

  /** recomputes every verdict; writes the image list only when a verdict or its reason changed */
  annotate(): void {
    const { gpu, images, nvidiaRuntime } = this.store.get()
    if (images === null) return
    let changed = false
    const flips: EventMap['compat.changed'][] = []
    const annotated = images.map((image) => {
      const compat = checkImageCompat(image.cudaEnv, gpu, nvidiaRuntime ?? null)
      if (!sameCompat(image.compat, compat)) changed = true
      if (compat.compatible !== null) {
        const before = this.verdicts.get(image.id)
        if (before !== undefined && before !== compat.compatible) flips.push(flip(image, before, compat, gpu))
        this.verdicts.set(image.id, compat.compatible)
      }
      return sameCompat(image.compat, compat) ? image : { ...image, compat }
    })
    const present = new Set(images.map((i) => i.id))
    for (const id of this.verdicts.keys()) if (!present.has(id)) this.verdicts.delete(id)
    if (changed) this.store.set('images', annotated, this.now())
    for (const data of flips) this.bus.publish('compat.changed', data)
  }
}

function sameCompat(a: ImageCompat | undefined, b: ImageCompat): boolean {
  return (
    a !== undefined &&
    a.compatible === b.compatible &&
    a.reason === b.reason &&
    a.requirement === b.requirement &&
    a.kernels === b.kernels &&
    a.kernelsReason === b.kernelsReason &&
    a.enforced === b.enforced
  )
}

function flip(image: ImageFacts, before: boolean, compat: ImageCompat, gpu: GpuFacts): EventMap['compat.changed'] {
  return {
    id: image.id,
    refs: image.repoTags,
    before,
    compatible: compat.compatible,
    reason: compat.reason,
    requirement: compat.requirement,
    driverVersion: gpu.driverVersion ?? null,
    cudaVersion: gpu.cudaVersion ?? null,
  }
}

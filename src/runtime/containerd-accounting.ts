// Shared-layer accounting on containerd, pure. An image holds blobs in the content store (index,
// manifest, config, compressed layers) and committed snapshots (its unpacked layers, by chain id);
// a container holds its image's snapshot chain and its own writable snapshot. What removing an
// image frees is what no other image and no container holds: its size less its shared bytes.

/** a content blob (`c:sha256:…`) or a snapshot (`s:sha256:…`), with its bytes */
export type HeldItems = ReadonlyMap<string, number>

export interface ImageHolding {
  id: string
  items: HeldItems
}

export interface Accounted {
  sizeBytes: number
  /** bytes of items that another image or a container also holds */
  sharedSizeBytes: number
}

/**
 * `holders` outside the images (containers' snapshot chains) count as one more holder of each
 * item they name, so an item only a container and one image hold is shared, not freed.
 */
export function accountImages(
  images: readonly ImageHolding[],
  otherHolders: readonly ReadonlySet<string>[] = [],
): { perImage: Map<string, Accounted>; uniqueBytes: number } {
  const refs = new Map<string, number>()
  const bytes = new Map<string, number>()
  for (const image of images) {
    for (const [key, size] of image.items) {
      refs.set(key, (refs.get(key) ?? 0) + 1)
      bytes.set(key, size)
    }
  }
  for (const held of otherHolders) for (const key of held) if (refs.has(key)) refs.set(key, refs.get(key)! + 1)
  const perImage = new Map<string, Accounted>()
  for (const image of images) {
    let sizeBytes = 0
    let sharedSizeBytes = 0
    for (const [key, size] of image.items) {
      sizeBytes += size
      if (refs.get(key)! > 1) sharedSizeBytes += size
    }
    perImage.set(image.id, { sizeBytes, sharedSizeBytes })
  }
  let uniqueBytes = 0
  for (const size of bytes.values()) uniqueBytes += size
  return { perImage, uniqueBytes }
}

/** the OCI chain ids of a layer stack, from the config's diff ids (image-spec config.md) */
export function chainIds(diffIds: readonly string[], sha256: (s: string) => string): string[] {
  const out: string[] = []
  for (const diffId of diffIds) {
    out.push(out.length === 0 ? diffId : `sha256:${sha256(`${out[out.length - 1]} ${diffId}`)}`)
  }
  return out
}

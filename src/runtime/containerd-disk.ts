// Where containerd's space is, from one store view: the images' unique bytes, each image's size and shared
// bytes, each container's writable snapshot. containerd has no build cache and no volumes to report.
import type { ImageStoreReader } from './containerd-images.js'
import type { StoreView } from './containerd-view.js'
import type { RuntimeDiskUsage } from './runtime.js'

export async function containerdDiskUsage(view: StoreView, reader: ImageStoreReader): Promise<RuntimeDiskUsage> {
  const containers = await Promise.all(
    view.containers.map(async (c) => ({
      id: c.id,
      name: c.names[0] ?? c.id,
      state: c.state,
      sizeRwBytes: c.listed.snapshotKey
        ? ((await reader.snapshotUsage(c.listed.snapshotter, c.listed.snapshotKey, false)) ?? 0)
        : 0,
      // the kubelet keeps container logs under /var/log/pods, not in containerd's root
      logBytes: null,
      imageId: c.imageId,
      labels: c.listed.labels,
      finishedAt: c.exitedAtMs === null ? null : Math.floor(c.exitedAtMs / 1000),
    })),
  )
  return {
    imagesBytes: view.uniqueBytes,
    images: view.images.map((i) => ({
      id: i.id,
      sizeBytes: i.sizeBytes,
      sharedSizeBytes: i.sharedSizeBytes,
      containers: view.containers.filter((c) => c.imageId === i.id).length,
    })),
    containers,
    buildCacheBytes: 0,
    volumes: [],
  }
}

// Docker's disk accounting: /system/df (every layer walked once, so it is slow on a big host) and the
// size of each container's log file, the one thing /system/df does not count. A log is stat'ed at
// the path Docker reports for it (LogPath), so a daemon with another log root or driver is right too.
import { stat } from 'node:fs/promises'
import type Docker from 'dockerode'
import type { RuntimeDiskUsage } from './runtime.js'
import { statusOf } from './remove-image.js'

interface DfAnswer {
  LayersSize?: number
  Images?: { Id: string; Size: number; SharedSize?: number; Containers?: number }[] | null
  Containers?: { Id: string; Names?: string[] | null; State: string; SizeRw?: number }[] | null
  Volumes?: { Name: string; UsageData?: { Size?: number; RefCount?: number } | null }[] | null
  BuildCache?: { Size?: number; Shared?: boolean }[] | null
}

/** inspections in flight at once: enough to be quick, few enough to leave dockerd room */
const INSPECT_CONCURRENCY = 8

/** Pure: /system/df's answer in the runtime's terms, with log sizes by container id. */
export function toDiskUsage(df: DfAnswer, logBytes: ReadonlyMap<string, number | null>): RuntimeDiskUsage {
  return {
    imagesBytes: df.LayersSize ?? 0,
    images: (df.Images ?? []).map((i) => ({
      id: i.Id,
      sizeBytes: i.Size,
      // -1: not computed; /system/df always computes it, so this is only a guard.
      sharedSizeBytes: Math.max(0, i.SharedSize ?? 0),
      containers: Math.max(0, i.Containers ?? 0),
    })),
    containers: (df.Containers ?? []).map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
      state: c.State,
      sizeRwBytes: Math.max(0, c.SizeRw ?? 0),
      logBytes: logBytes.get(c.Id) ?? null,
    })),
    // As the docker CLI counts it: a record shared with an image is in the images' bytes already.
    buildCacheBytes: (df.BuildCache ?? []).filter((b) => !b.Shared).reduce((sum, b) => sum + (b.Size ?? 0), 0),
    volumes: (df.Volumes ?? []).map((v) => ({
      name: v.Name,
      // -1: the driver could not say (a remote volume); counted as 0.
      sizeBytes: Math.max(0, v.UsageData?.Size ?? 0),
      refCount: Math.max(0, v.UsageData?.RefCount ?? 0),
    })),
  }
}

export async function dockerDiskUsage(docker: Docker): Promise<RuntimeDiskUsage> {
  const df = (await docker.df()) as DfAnswer
  const ids = (df.Containers ?? []).map((c) => c.Id)
  const logs = new Map<string, number | null>()
  for (let i = 0; i < ids.length; i += INSPECT_CONCURRENCY) {
    const batch = ids.slice(i, i + INSPECT_CONCURRENCY)
    const sizes = await Promise.all(batch.map((id) => logSize(docker, id)))
    batch.forEach((id, n) => logs.set(id, sizes[n]))
  }
  return toDiskUsage(df, logs)
}

/** the size of the container's log file; null when it has none (a driver that ships logs away) or is gone */
async function logSize(docker: Docker, id: string): Promise<number | null> {
  let path: string | undefined
  try {
    path = ((await docker.getContainer(id).inspect()) as { LogPath?: string }).LogPath
  } catch (err) {
    if (statusOf(err) === 404) return null
    throw err
  }
  if (!path) return null
  try {
    return (await stat(path)).size
  } catch {
    // Not written yet, removed meanwhile, or not on this filesystem (a remote daemon).
    return null
  }
}

// Docker's disk accounting: /system/df (every layer walked once, so it is slow on a big host) and the
// size of each container's log file, the one thing /system/df does not count. A log is stat'ed at
// the path Docker reports for it (LogPath), so a daemon with another log root or driver is right too.
import type Dockerode from 'dockerode'
import { stat } from 'node:fs/promises'
import { pathPart, statusOf, type DockerApi } from './docker-api.js'
import type { RuntimeDiskUsage } from './runtime.js'

/** the fields of GET /system/df that are read (@types/dockerode types it as any) */
interface DfAnswer {
  LayersSize?: number
  Images?: { Id: string; Size: number; SharedSize?: number; Containers?: number }[] | null
  Containers?:
    | {
        Id: string
        Names?: string[] | null
        State: string
        SizeRw?: number
        ImageID?: string
        Labels?: Record<string, string> | null
      }[]
    | null
  Volumes?:
    | {
        Name: string
        Labels?: Record<string, string> | null
        UsageData?: { Size?: number; RefCount?: number } | null
      }[]
    | null
  BuildCache?: { Size?: number; Shared?: boolean }[] | null
}

/** inspections in flight at once: enough to be quick, few enough to leave dockerd room */
const INSPECT_CONCURRENCY = 8

/** what inspecting a container adds to /system/df: its log size and when it finished */
export interface ContainerExtra {
  logBytes: number | null
  finishedAt: number | null
}

/** Pure: /system/df's answer in the runtime's terms, with log sizes and finish times by container id. */
export function toDiskUsage(df: DfAnswer, extra: ReadonlyMap<string, ContainerExtra>): RuntimeDiskUsage {
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
      logBytes: extra.get(c.Id)?.logBytes ?? null,
      imageId: c.ImageID ?? '',
      labels: c.Labels ?? {},
      finishedAt: extra.get(c.Id)?.finishedAt ?? null,
    })),
    // As the docker CLI counts it: a record shared with an image is in the images' bytes already.
    buildCacheBytes: (df.BuildCache ?? []).filter((b) => !b.Shared).reduce((sum, b) => sum + (b.Size ?? 0), 0),
    volumes: (df.Volumes ?? []).map((v) => ({
      name: v.Name,
      // -1: the driver could not say (a remote volume); counted as 0.
      sizeBytes: Math.max(0, v.UsageData?.Size ?? 0),
      // -1 or absent: Docker could not say; counted as in use, so no rule takes it for dangling.
      refCount: (v.UsageData?.RefCount ?? -1) < 0 ? 1 : v.UsageData!.RefCount!,
      labels: v.Labels ?? {},
      anonymous: isAnonymousVolume(v.Name, v.Labels ?? {}),
    })),
  }
}

/**
 * Docker 23 and later label the volumes it makes for a container; before that, such a volume is
 * only recognisable by its name: 64 hex digits, which Docker generates and people do not choose.
 */
export function isAnonymousVolume(name: string, labels: Record<string, string>): boolean {
  return 'com.docker.volume.anonymous' in labels || /^[0-9a-f]{64}$/.test(name)
}

/** /system/df is silent while it walks every layer: it gets this long, not the usual idle timeout */
export const DF_DEADLINE_MS = 10 * 60 * 1000

/**
 * /system/df does not get the usual deadline (a slow accounting is not an unreachable daemon) but
 * its own; the per-container inspections have the usual one.
 */
export async function dockerDiskUsage(api: DockerApi): Promise<RuntimeDiskUsage> {
  let df: DfAnswer
  try {
    df = (await api.signalled.df({ abortSignal: AbortSignal.timeout(DF_DEADLINE_MS) })) as DfAnswer
  } catch (err) {
    const name = (err as Error).name
    if (name !== 'AbortError' && name !== 'TimeoutError') throw err
    throw new Error(`Docker's disk accounting (/system/df) gave no answer within ${DF_DEADLINE_MS / 1000} s`)
  }
  const ids = (df.Containers ?? []).map((c) => c.Id)
  const extra = new Map<string, ContainerExtra>()
  for (let i = 0; i < ids.length; i += INSPECT_CONCURRENCY) {
    const batch = ids.slice(i, i + INSPECT_CONCURRENCY)
    const found = await Promise.all(batch.map((id) => inspectExtra(api, id)))
    batch.forEach((id, n) => extra.set(id, found[n]))
  }
  return toDiskUsage(df, extra)
}

/** the container's log size (null: none, a driver that ships logs away, or gone) and finish time */
async function inspectExtra(api: DockerApi, id: string): Promise<ContainerExtra> {
  let info: Dockerode.ContainerInspectInfo
  try {
    info = await api.within('GET /containers/{id}/json', (abortSignal) =>
      api.docker.getContainer(pathPart(id)).inspect({ abortSignal }),
    )
  } catch (err) {
    if (statusOf(err) === 404) return { logBytes: null, finishedAt: null }
    throw err
  }
  // Docker says 0001-01-01T00:00:00Z for a container that never finished.
  const finished = info.State?.Running ? NaN : Date.parse(info.State?.FinishedAt ?? '')
  const finishedAt = Number.isFinite(finished) && finished > 0 ? Math.floor(finished / 1000) : null
  if (!info.LogPath) return { logBytes: null, finishedAt }
  try {
    return { logBytes: (await stat(info.LogPath)).size, finishedAt }
  } catch {
    // Not written yet, removed meanwhile, or not on this filesystem (a remote daemon).
    return { logBytes: null, finishedAt }
  }
}

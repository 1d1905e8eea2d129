// Disk collector: size, used and available bytes of the filesystem that holds Docker's root dir
// (or disk.path), from systeminformation's fsSize (df underneath). On a loop-mounted ext4 its
// figures equal statfs(2) and df to the byte, so it is used as is. statfs is the fallback only
// when df does not answer in time (a stale network mount can make it hang) or does not list the
// mount that holds the path.
import { reportedUsedPercent } from './used-percent.js'
import { realpath, readFile, statfs } from 'node:fs/promises'
import si from 'systeminformation'
import type { Collector } from '../agent/collector.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { DiskFacts, SnapshotStore } from '../agent/snapshot.js'

const DF_DEADLINE_MS = 10_000

export interface MountUsage {
  mount: string
  size: number
  used: number
  available: number
}

/** Pure: the mount that holds `path`: the longest mountpoint that is `path` or one of its parents. */
export function mountFor<M extends { mount: string }>(path: string, mounts: readonly M[]): M | null {
  let best: M | null = null
  for (const m of mounts) {
    const prefix = m.mount.endsWith('/') ? m.mount : `${m.mount}/`
    const holds = path === m.mount || path.startsWith(prefix)
    if (holds && (!best || m.mount.length > best.mount.length)) best = m
  }
  return best
}

/** Pure: like df, used percent of what is usable: used / (used + available); reserved blocks excluded. */
export function diskFacts(path: string, m: MountUsage): DiskFacts {
  return {
    path,
    mountpoint: m.mount,
    sizeBytes: m.size,
    usedBytes: m.used,
    availBytes: m.available,
    usedPercent: reportedUsedPercent({ usedBytes: m.used, availBytes: m.available }),
  }
}

/** Pure: mountpoints of /proc/self/mounts; the kernel escapes space, tab, newline and backslash as octal. */
export function parseProcMounts(text: string): string[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      line.split(' ')[1].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    )
}

export async function measureDisk(path: string): Promise<DiskFacts> {
  let real: string
  try {
    real = await realpath(path)
  } catch (err) {
    throw new Error(`cannot measure ${path}: ${(err as Error).message}`)
  }
  const fromDf = await withDeadline(si.fsSize(), DF_DEADLINE_MS).catch(() => null)
  const viaDf = fromDf && mountFor(real, fromDf)
  if (viaDf) return diskFacts(path, viaDf)
  return diskFacts(path, await statfsUsage(real))
}

/**
 * The fallback when df hung or did not list the mount: statfs of the path itself, with the
 * mountpoint from /proc/self/mounts. Same figures as df (both are statfs(2) underneath).
 */
async function statfsUsage(path: string): Promise<MountUsage> {
  const reading = await readFilesystem(path)
  let mount = '/'
  try {
    mount =
      mountFor(
        path,
        parseProcMounts(await readFile('/proc/self/mounts', 'utf8')).map((m) => ({ mount: m })),
      )?.mount ?? '/'
  } catch {
    /* no /proc: the root is the best guess */
  }
  return { mount, size: reading.sizeBytes, used: reading.usedBytes, available: reading.availBytes }
}

/** One statfs(2) reading of the filesystem that holds `path`. */
export interface DiskReading {
  path: string
  sizeBytes: number
  usedBytes: number
  availBytes: number
  /** used / (used + available), as df computes it, to two decimals */
  usedPercent: number
}

/**
 * The disk as it is now, cheaply: no df, no mount table. The prune executor reads it before
 * planning and after each removal, where the last snapshot is already stale.
 */
export async function readFilesystem(path: string): Promise<DiskReading> {
  const fs = await statfs(path)
  const sizeBytes = fs.blocks * fs.bsize
  const usedBytes = (fs.blocks - fs.bfree) * fs.bsize
  const availBytes = fs.bavail * fs.bsize
  return { path, sizeBytes, usedBytes, availBytes, usedPercent: reportedUsedPercent({ usedBytes, availBytes }) }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

export class DiskCollector implements Collector {
  readonly name = 'disk'

  constructor(
    private readonly path: string | null,
    private readonly runtime: ContainerRuntime | null,
    private readonly store: SnapshotStore,
  ) {}

  async collect(): Promise<void> {
    const path = this.path ?? (this.runtime ? await this.runtime.rootDir() : null)
    if (!path) throw new Error('no disk.path configured and no container runtime to ask for its root dir')
    this.store.set('disk', await measureDisk(path))
  }
}

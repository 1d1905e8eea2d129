// Disk collector: size, used and available bytes of the filesystem that holds Docker's root dir
// (or disk.path), from statfs(2) of that path, the call df itself makes, so the figures equal df's
// to the byte; the mountpoint is the longest one in /proc/self/mounts that holds the path. No df is
// run: it would stat every mount, and one stale network mount elsewhere could make it hang.
// systeminformation, which supplies the host facts (host-facts.ts), is not used here either: its
// fsSize() runs `df` on each call, and the disk is read on every collection and before and after
// each prune removal; statfs is one syscall, with no child process.
import { reportedUsedPercent } from './used-percent.js'
import { realpath, readFile, statfs } from 'node:fs/promises'
import type { Collector } from '../core/collector.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { DiskFacts, SnapshotStore } from '../core/snapshot.js'

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

/** one line of /proc/self/mountinfo: where, which device (major:minor), and which directory of it */
export interface MountInfo {
  mount: string
  device: string
  /** the directory of the filesystem mounted there: "/" for the whole filesystem, another for a bind mount */
  root: string
}

/** Pure: /proc/self/mountinfo; the kernel escapes space, tab, newline and backslash as octal. */
export function parseMountInfo(text: string): MountInfo[] {
  const unescape = (v: string) => v.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length >= 5)
    .map((f) => ({ device: f[2], root: unescape(f[3]), mount: unescape(f[4]) }))
}

/**
 * Pure: the mountpoint to name for the filesystem that holds `path`, as df names it. dockerd bind
 * mounts its data root onto itself (to make its mount propagation private), so the longest mount
 * holding /var/lib/docker is often /var/lib/docker itself; df, and this, name the filesystem by
 * where it is mounted whole (root "/") above the path instead, when it is.
 */
export function filesystemMountFor(path: string, mounts: readonly MountInfo[]): string | null {
  const holder = mountFor(path, mounts)
  if (!holder) return null
  const whole = mountFor(
    path,
    mounts.filter((m) => m.device === holder.device && m.root === '/'),
  )
  return (whole ?? holder).mount
}

export async function measureDisk(path: string): Promise<DiskFacts> {
  let real: string
  try {
    real = await realpath(path)
  } catch (err) {
    throw new Error(`cannot measure ${path}: ${(err as Error).message}`)
  }
  return diskFacts(path, await statfsUsage(real))
}

/** statfs of the path itself, with the mountpoint from /proc/self/mounts. */
async function statfsUsage(path: string): Promise<MountUsage> {
  const reading = await readFilesystem(path)
  let mount = '/'
  try {
    mount = filesystemMountFor(path, parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'))) ?? '/'
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

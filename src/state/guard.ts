// Keeps durable state writable on a full disk. The state directory usually shares its filesystem
// with Docker's root, the one that fills up. A reserve file, made while there is room, is released
// when a write fails for lack of space so that the write can go through; it is made again once
// the disk has room. Stores whose writes still fail keep their data in memory and are retried on a
// timer and when asked (after a prune freed space). Every failed write is counted; the first one
// of a streak and the recovery are published as events.
import { closeSync, existsSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs'
import { statfsSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { EventBus, EventMap } from '../core/events.js'

export type StateStoreName = 'outbox' | 'usage'

export const RESERVE_FILE = 'reserve'
/** how often failed stores are retried and a released reserve is made again */
const RETRY_MS = 5000
const CHUNK = 1024 * 1024

export interface StateGuardOptions {
  stateDir: string
  reserveBytes: number
  bus: EventBus
  log: Logger
}

/** whether a write failed because the filesystem is full */
export function isNoSpace(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  if (e?.code === 'ENOSPC' || e?.code === 'SQLITE_FULL' || e?.code === 'EDQUOT') return true
  return /SQLITE_FULL|ENOSPC|disk is full/i.test(e?.message ?? '')
}

/** whether the filesystem of `dir` has fewer than `bytes` free; false when it cannot be read */
function freeBelow(dir: string, bytes: number): boolean {
  try {
    const fs = statfsSync(dir)
    return fs.bfree * fs.bsize < bytes
  } catch {
    return false
  }
}

/**
 * For a prune run outside the agent (`gpuhost prune`): the agent's reserve is given up when the
 * filesystem has less than its size free, as the agent itself does before its prunes, so Docker has
 * room to remove images on a full disk. The agent makes it again once there is room. True when it
 * was given up.
 */
export function releaseReserveWhenFull(stateDir: string, reserveBytes: number): boolean {
  const file = join(stateDir, RESERVE_FILE)
  if (!existsSync(file) || !freeBelow(stateDir, reserveBytes)) return false
  rmSync(file, { force: true })
  return true
}

export class StateGuard {
  readonly reserveFile: string
  readonly errors: Record<StateStoreName, number> = { outbox: 0, usage: 0 }
  private readonly failing = new Map<StateStoreName, string>()
  private readonly retries = new Set<() => void>()
  private timer: NodeJS.Timeout | null = null
  private stopped = false

  constructor(private readonly opts: StateGuardOptions) {
    this.reserveFile = join(opts.stateDir, RESERVE_FILE)
  }

  /** makes the reserve when it is missing; a full disk now only means it is made later */
  start(): void {
    this.stopped = false
    if (!this.makeReserve()) this.arm()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** a store's retry: runs on the timer while anything failed, and on retryNow() */
  onRetry(fn: () => void): () => void {
    this.retries.add(fn)
    return () => this.retries.delete(fn)
  }

  /** Runs one write. Out of space, it releases the reserve and tries once more; a write that still fails throws. */
  write<T>(store: StateStoreName, fn: () => T): T {
    try {
      const out = fn()
      this.succeeded(store)
      return out
    } catch (err) {
      this.errors[store]++
      if (isNoSpace(err) && this.releaseReserve()) {
        try {
          const out = fn()
          this.succeeded(store)
          return out
        } catch (again) {
          this.errors[store]++
          this.failed(store, again as Error)
          throw again
        }
      }
      this.failed(store, err as Error)
      throw err
    }
  }

  /** Releases the reserve when the filesystem has less than its size free: room for a prune to work in. */
  makeRoom(): void {
    if (freeBelow(this.opts.stateDir, this.opts.reserveBytes)) this.releaseReserve()
  }

  /** retries every store now (a prune freed space) */
  retryNow(): void {
    for (const fn of this.retries) {
      try {
        fn()
      } catch (err) {
        this.opts.log.debug({ err: (err as Error).message }, 'state retry failed')
      }
    }
    if (this.failing.size === 0 && this.reserveSize() < this.opts.reserveBytes) this.makeReserve()
    if (this.failing.size === 0 && this.reserveSize() >= this.opts.reserveBytes && this.timer) {
      clearInterval(this.timer)
      this.timer = null
    }
  }

  failingStores(): StateStoreName[] {
    return [...this.failing.keys()]
  }

  private succeeded(store: StateStoreName): void {
    const was = this.failing.get(store)
    if (was === undefined) return
    this.failing.delete(store)
    this.opts.log.info({ store }, 'state can be written again')
    this.publishLater('state.write_recovered', { store })
  }

  private failed(store: StateStoreName, err: Error): void {
    this.arm()
    if (this.failing.has(store)) return
    this.failing.set(store, err.message)
    this.opts.log.error({ store, err: err.message }, 'cannot write state: kept in memory and retried')
    this.publishLater('state.write_failed', { store, error: err.message, noSpace: isNoSpace(err) })
  }

  /** Published on the next turn: the outbox, which also listens to the bus, may be mid-write. */
  private publishLater<K extends 'state.write_failed' | 'state.write_recovered'>(type: K, data: EventMap[K]): void {
    setImmediate(() => {
      if (!this.stopped) this.opts.bus.publish(type, data)
    })
  }

  private arm(): void {
    if (this.timer || this.stopped) return
    this.timer = setInterval(() => this.retryNow(), RETRY_MS)
    this.timer.unref()
  }

  private reserveSize(): number {
    try {
      return statSync(this.reserveFile).size
    } catch {
      return 0
    }
  }

  private releaseReserve(): boolean {
    if (this.reserveSize() === 0) return false
    rmSync(this.reserveFile, { force: true })
    const { reserveFile: file } = this
    this.opts.log.warn({ file, bytes: this.opts.reserveBytes }, 'the disk is full: released the state reserve')
    this.arm()
    return true
  }

  /** Writes the reserve (real blocks, not a sparse file) when the disk has room for it twice over. */
  private makeReserve(): boolean {
    const want = this.opts.reserveBytes
    if (want === 0 || this.reserveSize() >= want) return true
    try {
      const fs = statfsSync(this.opts.stateDir)
      if (fs.bfree * fs.bsize < 2 * want) return false
    } catch {
      return false
    }
    let fd: number | null = null
    try {
      fd = openSync(this.reserveFile, 'w', 0o600)
      const zeros = Buffer.alloc(Math.min(CHUNK, want))
      for (let done = 0; done < want; done += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, want - done))
      fsyncSync(fd)
      closeSync(fd)
      this.opts.log.info({ file: this.reserveFile, bytes: want }, 'state reserve in place')
      return true
    } catch (err) {
      if (fd !== null)
        try {
          closeSync(fd)
        } catch {
          /* already closed */
        }
      rmSync(this.reserveFile, { force: true })
      this.opts.log.warn({ file: this.reserveFile, err: (err as Error).message }, 'cannot make the state reserve yet')
      return false
    }
  }
}

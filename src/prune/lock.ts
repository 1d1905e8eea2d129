// One prune at a time on a host, across processes: the agent's job runner serialises its own
// triggers, and this lock (a directory in stateDir, kept fresh while held) keeps a `gpuhost prune`
// run by hand from removing images while the agent's prune does, and the other way round. A holder
// that died leaves a lock that goes stale and is taken over.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type lockfileModule from 'proper-lockfile'
import type { Logger } from 'pino'
import { RESERVE_FILE } from '../state/guard.js'

export const PRUNE_LOCK = 'prune.lock'
/** a lock not refreshed for this long belongs to a process that is gone */
const STALE_MS = 30_000

export interface PruneLockOptions {
  stateDir: string
  log: Logger
  /** how long to wait for another prune to finish */
  waitMs?: number
}

/** runs `fn` while holding the host's prune lock; throws when another prune holds it longer than waitMs */
export async function withPruneLock<T>(opts: PruneLockOptions, fn: () => Promise<T>): Promise<T> {
  mkdirSync(opts.stateDir, { recursive: true })
  const lockfilePath = join(opts.stateDir, PRUNE_LOCK)
  const waitMs = opts.waitMs ?? 10 * 60_000
  // Loaded with the first prune: an idle agent does not carry it (and the graceful-fs it brings).
  const lockfile: typeof lockfileModule = (await import('proper-lockfile')).default
  const attempt = (retries: number) =>
    lockfile.lock(opts.stateDir, {
      lockfilePath,
      stale: STALE_MS,
      realpath: false,
      retries: { retries, factor: 1, minTimeout: 1000, maxTimeout: 1000 },
      onCompromised: (err) =>
        opts.log.error({ err: err.message, lock: lockfilePath }, 'the prune lock was taken over while held'),
    })
  let release: () => Promise<void>
  try {
    release = await attempt(0).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOSPC') return lockOnFullDisk(opts, () => attempt(0))
      if (err.code !== 'ELOCKED') throw err
      opts.log.info({ lock: lockfilePath }, 'another prune is running on this host: waiting for it to finish')
      return attempt(Math.ceil(waitMs / 1000))
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new Error(`another prune holds ${lockfilePath} and did not finish within ${Math.round(waitMs / 1000)} s`)
    }
    throw err
  }
  try {
    return await fn()
  } finally {
    await release().catch((err: Error) =>
      opts.log.warn({ err: err.message, lock: lockfilePath }, 'could not release the prune lock; it goes stale'),
    )
  }
}

/**
 * The lock is a directory, and a full disk may have no block for it, yet a prune is what frees the
 * disk. The state reserve goes first (the agent makes it again once there is room); when even that
 * does not help, the prune runs without the cross-process lock rather than not at all.
 */
type Release = () => Promise<void>

async function lockOnFullDisk(opts: PruneLockOptions, again: () => Promise<Release>): Promise<Release> {
  rmSync(join(opts.stateDir, RESERVE_FILE), { force: true })
  try {
    return await again()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
    opts.log.warn({ stateDir: opts.stateDir }, 'the disk is full: the prune runs without its cross-process lock')
    return async () => {}
  }
}

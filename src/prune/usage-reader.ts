// The runtime's disk accounting as a prune run reads it: once per run, and again only after
// removals changed it; and, after a run that could not free enough, which kinds hold the space.
import type { Logger } from 'pino'
import { RuntimeUnavailableError, type ContainerRuntime, type RuntimeDiskUsage } from '../runtime/runtime.js'
import { spaceHeldBy, type HeldBytes } from './held-by.js'
import { messageOf } from './removal.js'
import type { PruneReport } from './report.js'

/** the runtime's disk accounting is slow: read it once per run, and again only after removals changed it */
export class UsageReader {
  private pending: Promise<RuntimeDiskUsage> | null = null
  constructor(private readonly runtime: ContainerRuntime) {}
  read(): Promise<RuntimeDiskUsage> {
    this.pending ??= this.runtime.diskUsage()
    return this.pending
  }
  forget(): void {
    this.pending = null
  }
}

/**
 * The accounting for a rule beside images; null (and the warning, which says what is not removed)
 * when the runtime cannot give it. A runtime that is away ends the run.
 */
export async function usageOrWarn(reader: UsageReader, log: Logger, warning: string): Promise<RuntimeDiskUsage | null> {
  try {
    return await reader.read()
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    log.warn({ err: messageOf(err) }, warning)
    return null
  }
}

/** which kinds hold the space, from a fresh accounting; null (and a warning) when the runtime cannot say */
export async function heldBy(log: Logger, report: PruneReport, reader: UsageReader): Promise<HeldBytes[] | null> {
  try {
    return spaceHeldBy(await reader.read(), report.kept, [...report.failed, ...report.skipped])
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) return null
    log.warn({ err: messageOf(err) }, 'prune: cannot read the disk accounting to say what holds the space')
    return null
  }
}

// One removal loop for every kind a prune takes one by one (containers, volumes, images): each
// planned item in turn until a stop says so, the runtime's answer recorded under its outcome.
// Removal is never forced: the runtime says "skipped" for what is in use.
import type { Logger } from 'pino'
import type { Trigger } from '../core/actions.js'
import { RuntimeUnavailableError, type RemoveOutcome } from '../runtime/runtime.js'
import type { PruneRequest } from './executor-deps.js'

export type Outcome = RemoveOutcome['outcome']

export interface EachRemoval<T> {
  items: readonly T[]
  /** true: the loop ends before this item (the agent is stopping, the measured disk is below the target) */
  stopBefore: (item: T) => boolean
  remove: (item: T) => Promise<RemoveOutcome>
  /** puts the item in the report under its outcome and writes its audit line */
  record: (item: T, outcome: Outcome, reason: string) => void
  /** after each item, whatever its outcome (the image run measures the disk here) */
  after?: (item: T) => Promise<void>
}

/** reason: the plan's when the item went, the runtime's (or the error's) when it did not */
export async function removeEach<T extends { reason: string }>(loop: EachRemoval<T>): Promise<void> {
  for (const item of loop.items) {
    if (loop.stopBefore(item)) break
    const outcome = await loop.remove(item).catch((err) => {
      // The runtime is away (refused, or silent past its timeout): every other item would
      // meet the same, so the run stops here and reports an error.
      if (err instanceof RuntimeUnavailableError) throw err
      return { outcome: 'failed' as const, reason: messageOf(err) }
    })
    loop.record(item, outcome.outcome, outcome.outcome === 'removed' ? item.reason : outcome.reason)
    await loop.after?.(item)
  }
}

/** the audit line of one item: a warning when the removal failed, else information */
export function auditLine(log: Logger, outcome: Outcome, fields: Record<string, unknown>, message: string): void {
  log[outcome === 'failed' ? 'warn' : 'info'](fields, message)
}

/** the trigger and schedule every audit line names */
export function runFields(req: PruneRequest): { trigger: Trigger; schedule?: string } {
  return { trigger: req.trigger, ...(req.schedule ? { schedule: req.schedule } : {}) }
}

export function messageOf(err: unknown): string {
  return (err as Error | undefined)?.message ?? String(err)
}

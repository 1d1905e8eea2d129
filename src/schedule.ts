// Cron schedules (prune.schedule, prune.schedules[].cron, prewarm.schedule), on node-cron, in its own
// syntax: 5 fields, or 6 with seconds first; names short or in full; ranges that wrap; day of month
// and day of week must both match; @daily and its kin. node-cron is loaded on first use, not with this
// module: a config with no schedule never loads it, and the Intl.DateTimeFormat it reads times
// through (ICU data, ~8 MiB of an idle agent) is only built once a schedule starts.
import { createRequire } from 'node:module'
import type * as NodeCron from 'node-cron'

/** what node-cron reports about its own runs (a time skipped because a run still goes on) */
export interface ScheduleLog {
  info(msg: string): void
  warn(msg: string): void
  error(obj: object, msg: string): void
  debug(msg: string): void
}

let loaded: typeof NodeCron | undefined
function cron(): typeof NodeCron {
  // the CommonJS build, so that validation (at config parse, synchronous) can load it on demand
  loaded ??= createRequire(import.meta.url)('node-cron') as typeof NodeCron
  return loaded
}

/** whether `expression` is a schedule this agent accepts (node-cron's own check) */
export function isCronExpression(expression: string): boolean {
  return cron().validate(expression)
}

/** whether `timeZone` is an IANA zone name this Node.js knows (`Europe/Berlin`, `UTC`) */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone })
    return true
  } catch {
    return false
  }
}

export interface ScheduleOptions {
  /** an IANA zone the expression's times are read in; null or left out: the host's own */
  timezone?: string | null
  /** where node-cron's own notes go; left out: nowhere */
  log?: ScheduleLog
}

/**
 * Calls `run` at each time `expression` names, never twice at once (a run still going when the
 * next time comes skips that time: noOverlap). Returns what stops it. Unnamed: node-cron names the
 * task by a random id, so several agents in one process never clash in its process-wide task list.
 */
export function startSchedule(expression: string, run: () => Promise<unknown>, opts: ScheduleOptions = {}): Schedule {
  const { log } = opts
  const task = cron().schedule(
    expression,
    // the callers log their own failures; one that escapes is logged here and must not end the agent
    () => run().catch((err: unknown) => log?.error({ err: (err as Error)?.message }, 'scheduled run failed')),
    {
      noOverlap: true,
      ...(opts.timezone ? { timezone: opts.timezone } : {}),
      logger: log ? nodeCronLogger(log) : SILENT,
    },
  )
  let stopped = false
  return {
    next: () => (stopped ? null : task.getNextRun()),
    // destroy, not stop: it clears the timer and takes the task out of node-cron's list
    stop: () => {
      stopped = true
      void task.destroy()
    },
  }
}

export interface Schedule {
  /** when it runs next; null once stopped */
  next(): Date | null
  stop(): void
}

/**
 * Whether `at` is a time `expression` names, read in `timezone` (the host's own when null): what a
 * started schedule would fire at. The task is created unstarted and destroyed at once: no timer.
 */
export function cronMatches(expression: string, at: Date, timezone: string | null = null): boolean {
  const task = cron().createTask(expression, () => undefined, {
    ...(timezone ? { timezone } : {}),
    logger: SILENT,
  })
  try {
    return task.match(at)
  } finally {
    void task.destroy()
  }
}

const SILENT: NodeCron.Logger = { info() {}, warn() {}, error() {}, debug() {} }

function nodeCronLogger(log: ScheduleLog): NodeCron.Logger {
  const text = (m: string | Error) => (m instanceof Error ? m.message : m)
  return {
    info: (m) => log.info(`node-cron: ${m}`),
    warn: (m) => log.warn(`node-cron: ${m}`),
    error: (m, err) => log.error({ err: err?.message }, `node-cron: ${text(m)}`),
    debug: (m) => log.debug(`node-cron: ${text(m)}`),
  }
}

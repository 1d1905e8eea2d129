// Cron schedules (prune.schedule, prune.schedules[].cron, prewarm.schedule), on croner: it computes
// the next run with the Date object's own local time, where node-cron builds an Intl.DateTimeFormat
// on every start and walks it each tick; that formatter alone pulled ~8 MiB of ICU data into an idle
// agent (bench/startup.ts). The syntax stays what the config documents: 5 fields, or 6 with seconds
// first; day of month and day of week must both match, as node-cron did.
import { Cron, type CronOptions } from 'croner'

const SYNTAX: CronOptions = { mode: '5-or-6-parts', domAndDow: true }

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']
// May is its own abbreviation.
const MONTHS = [
  ...['january', 'february', 'march', 'april', 'june', 'july'],
  ...['august', 'september', 'october', 'november', 'december'],
]
const FULL_NAMES = new RegExp(`\\b(${[...DAYS, ...MONTHS].join('|')})\\b`, 'gi')

/** node-cron also took full day and month names (`sunday`, `january`); croner takes the first three letters */
function abbreviated(expression: string): string {
  return expression.replace(FULL_NAMES, (name) => name.slice(0, 3))
}

/** whether `expression` is a schedule this agent accepts */
export function isCronExpression(expression: string): boolean {
  try {
    new Cron(abbreviated(expression), { ...SYNTAX, paused: true }).stop()
    return true
  } catch {
    return false
  }
}

/**
 * Calls `run` at each time `expression` names, never twice at once (a run still going when the
 * next time comes skips that time). Returns what stops it. Unnamed: croner keeps named jobs in one
 * process-wide list where a name may be used once, and tests start several agents in one process.
 */
export function startSchedule(expression: string, run: () => Promise<unknown>): Schedule {
  const job = new Cron(abbreviated(expression), { ...SYNTAX, protect: true }, async () => {
    await run()
  })
  return { next: () => job.nextRun(), stop: () => job.stop() }
}

export interface Schedule {
  /** when it runs next; null once stopped */
  next(): Date | null
  stop(): void
}

/** the first time after `after` that `expression` names (what a started schedule would wait for) */
export function nextRun(expression: string, after: Date): Date | null {
  return new Cron(abbreviated(expression), { ...SYNTAX, paused: true }).nextRun(after)
}

// Cron schedules (prune.schedule, prune.schedules[].cron, prewarm.schedule), on croner: it computes
// the next run with the Date object's own local time, where node-cron formats candidate times through
// an Intl.DateTimeFormat; that formatter alone pulled ~8 MiB of ICU data into an idle agent
// (bench/startup.ts). The syntax stays what node-cron took: 5 fields, or 6 with seconds first; names
// short or in full; ranges that wrap; day of month and day of week must both match.
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

const DAY_NUMBERS = new Map(DAYS.map((d, i) => [d.slice(0, 3), i]))
const MONTH_NUMBERS = new Map(
  ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].map((m, i) => [m, i + 1]),
)
/** each field's lowest and highest value, the last five fields of an expression (weekday 7 is Sunday, 0) */
const BOUNDS: [number, number, Map<string, number>?][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12, MONTH_NUMBERS],
  [0, 6, DAY_NUMBERS],
]

/**
 * node-cron also took ranges that wrap past the end of a field (`22-2` for hours, `fri-mon`); croner
 * refuses them, so they are written out as lists (`22,23,0,1,2`), a step counted from the range's start.
 */
function unwrapped(expression: string): string {
  const fields = expression.trim().split(/\s+/)
  const first = fields.length - BOUNDS.length
  return fields
    .map((field, i) => {
      const bounds = i === 0 && first === 1 ? BOUNDS[0] : BOUNDS[i - first]
      if (!bounds) return field
      const [min, max, names] = bounds
      const value = (v: string) => (/^\d+$/.test(v) ? Number(v) : names?.get(v.toLowerCase()))
      return field
        .split(',')
        .map((part) => {
          const m = /^(\w+)-(\w+)(?:\/(\d+))?$/.exec(part)
          const from = m ? value(m[1]) : undefined
          const to = m ? value(m[2]) : undefined
          const step = Number(m?.[3] ?? 1)
          if (from === undefined || to === undefined || from <= to || from > max || to < min || step < 1) return part
          const values: number[] = []
          for (let v = from, n = 0; ; v = v === max ? min : v + 1, n++) {
            if (n % step === 0) values.push(v)
            if (v === to) break
          }
          return values.join(',')
        })
        .join(',')
    })
    .join(' ')
}

/** an expression as node-cron read it, in croner's syntax */
function normalized(expression: string): string {
  return unwrapped(abbreviated(expression))
}

/** whether `expression` is a schedule this agent accepts */
export function isCronExpression(expression: string): boolean {
  try {
    new Cron(normalized(expression), { ...SYNTAX, paused: true }).stop()
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
  // catch: the callers log their own failures; one that escapes must not end the agent
  const job = new Cron(normalized(expression), { ...SYNTAX, protect: true, catch: true }, async () => {
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
  return new Cron(normalized(expression), { ...SYNTAX, paused: true }).nextRun(after)
}

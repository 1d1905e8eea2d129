// Cron schedules on node-cron: the syntax the config documents (5 fields, or 6 with seconds first;
// names; wrapping ranges; L; day of month AND weekday), times read in a given zone, a real firing, no
// second run while one goes on, and nothing left behind once stopped.
import t from 'tap'
import { createRequire } from 'node:module'
import type * as NodeCron from 'node-cron'
import { cronMatches, isCronExpression, isTimeZone, startSchedule, type ScheduleLog } from '../../src/schedule.js'

// the build src/schedule.ts loads, so that its task list is the one the schedules are in
const nodeCron = createRequire(import.meta.url)('node-cron') as typeof NodeCron

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function waitUntil(what: string, ok: () => boolean, boundMs = 30_000): Promise<void> {
  const started = Date.now()
  while (!ok()) {
    if (Date.now() - started > boundMs) throw new Error(`not within ${boundMs} ms: ${what}`)
    await sleep(50)
  }
}

function collectingLog() {
  const lines: { level: string; msg: string }[] = []
  const log: ScheduleLog = {
    info: (msg) => lines.push({ level: 'info', msg }),
    warn: (msg) => lines.push({ level: 'warn', msg }),
    error: (_obj, msg) => lines.push({ level: 'error', msg }),
    debug: (msg) => lines.push({ level: 'debug', msg }),
  }
  return { lines, log }
}

t.test('what the config accepts and refuses', async (t) => {
  for (const ok of [
    '0 3 * * 0',
    '0 2 * * *',
    '*/15 * * * *',
    '30 0 3 * * SUN',
    '0 4 1-7 * MON',
    '0 0 L * *',
    '0 0 1 JAN,JUL *',
    '0 3 * * sunday',
    '0 0 1 january,July *',
    '0 0 * * Monday-Friday',
    '0 22-2 * * *',
    '0 0 * * fri-mon',
    '0 0 1 nov-feb *',
    '0 3 * * 7',
    '@daily',
    '@weekly',
    '0 0 ? * MON',
  ])
    t.ok(isCronExpression(ok), ok)
  for (const bad of [
    '',
    'every sunday',
    '0 3 * *',
    '0 0 0 3 * * 2027',
    '61 * * * *',
    '0 25 * * *',
    '0 3 * * 8',
    '* * * * * * * *',
    '*/0 * * * *',
    '0 0 31 2 *',
    '@reboot',
    '0 3 * * mo',
  ])
    t.notOk(isCronExpression(bad), JSON.stringify(bad))
})

t.test('the times an expression names, read in UTC', async (t) => {
  const at = (expression: string, iso: string) => cronMatches(expression, new Date(iso), 'UTC')
  t.ok(at('0 3 * * 0', '2026-06-07T03:00:00Z'), 'Sunday 2026-06-07 at 03:00')
  t.notOk(at('0 3 * * 0', '2026-06-08T03:00:00Z'), 'not Monday')
  t.ok(at('30 0 12 * * *', '2026-06-01T12:00:30Z'), 'seconds first with 6 fields')
  t.notOk(at('30 0 12 * * *', '2026-06-01T12:00:00Z'))
  t.ok(at('0 0 L * *', '2026-06-30T00:00:00Z'), 'L is the last day of the month')
  t.notOk(at('0 0 L * *', '2026-06-29T00:00:00Z'))
  // both day fields set: a time must match both (the first Monday of a month), not either
  t.ok(at('0 4 1-7 * MON', '2026-07-06T04:00:00Z'), 'the first Monday of July')
  t.notOk(at('0 4 1-7 * MON', '2026-06-02T04:00:00Z'), 'day 2, a Tuesday: day of month alone is not enough')
  t.notOk(at('0 4 1-7 * MON', '2026-06-08T04:00:00Z'), 'the second Monday: weekday alone is not enough')
  t.ok(at('0 3 * * sunday', '2026-06-07T03:00:00Z'), 'full day names')
  t.ok(at('0 0 1 september *', '2026-09-01T00:00:00Z'), 'full month names')
  t.ok(at('0 3 * * 7', '2026-06-07T03:00:00Z'), '7 is Sunday too')
  t.ok(at('@daily', '2026-06-02T00:00:00Z'), '@daily is midnight')
  // ranges that wrap past a field's end
  for (const hour of ['22', '23', '00', '01', '02'])
    t.ok(at('0 22-2 * * *', `2026-06-01T${hour}:00:00Z`), `22-2: ${hour}`)
  t.notOk(at('0 22-2 * * *', '2026-06-01T03:00:00Z'), '22-2: not 03')
  t.ok(at('0 0 * * fri-mon', '2026-06-07T00:00:00Z'), 'fri-mon: Sunday')
  t.notOk(at('0 0 * * fri-mon', '2026-06-03T00:00:00Z'), 'fri-mon: not Wednesday')
  t.ok(at('0 0 1 nov-feb *', '2027-01-01T00:00:00Z'), 'nov-feb: January')
  t.notOk(at('0 0 1 nov-feb *', '2026-06-01T00:00:00Z'), 'nov-feb: not June')
})

t.test('a zone moves the times; null is the host zone', async (t) => {
  // 02:30 in Berlin is 00:30 UTC in summer (CEST, +2) and 01:30 UTC in winter (CET, +1)
  t.ok(cronMatches('30 2 * * *', new Date('2026-06-01T00:30:00Z'), 'Europe/Berlin'), 'summer')
  t.ok(cronMatches('30 2 * * *', new Date('2026-01-15T01:30:00Z'), 'Europe/Berlin'), 'winter')
  t.notOk(cronMatches('30 2 * * *', new Date('2026-06-01T02:30:00Z'), 'Europe/Berlin'), '02:30 UTC is 04:30 there')
  const host = Intl.DateTimeFormat().resolvedOptions().timeZone
  const when = new Date('2026-06-01T03:00:00Z')
  t.equal(cronMatches('0 3 * * *', when, null), cronMatches('0 3 * * *', when, host), `null reads it in ${host}`)
  t.ok(isTimeZone('Asia/Tokyo') && isTimeZone('UTC'))
  t.notOk(isTimeZone('Mars/Olympus_Mons'))
})

t.test('the next run of a started schedule, in Asia/Tokyo and in UTC', async (t) => {
  const hour = 3600_000
  /** the first instant after `now` at which the UTC clock reads hh:00:00 */
  const nextUtcHour = (hh: number, now: number) => {
    const day = new Date(now)
    const at = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), hh)
    return at > now ? at : at + 24 * hour
  }
  const before = Date.now()
  const tokyo = startSchedule('0 3 * * *', async () => undefined, { timezone: 'Asia/Tokyo' })
  const utc = startSchedule('0 3 * * *', async () => undefined, { timezone: 'UTC' })
  const after = Date.now()
  t.teardown(() => (tokyo.stop(), utc.stop()))
  t.comment(`next in Asia/Tokyo ${tokyo.next()?.toISOString()}, in UTC ${utc.next()?.toISOString()}`)
  // Japan keeps +9 all year: 03:00 there is 18:00 UTC
  t.ok([nextUtcHour(18, before), nextUtcHour(18, after)].includes(tokyo.next()!.getTime()), 'Tokyo: 18:00 UTC')
  t.ok([nextUtcHour(3, before), nextUtcHour(3, after)].includes(utc.next()!.getTime()), 'UTC: 03:00 UTC')
  t.not(tokyo.next()!.getTime(), utc.next()!.getTime(), 'the same expression, two instants')
})

t.test('a slow run is never started twice; a stopped schedule leaves nothing behind', async (t) => {
  const tasksBefore = nodeCron.getTasks().size
  const { lines, log } = collectingLog()
  let runs = 0
  let running = 0
  let mostAtOnce = 0
  const schedule = startSchedule(
    '* * * * * *',
    async () => {
      runs++
      running++
      mostAtOnce = Math.max(mostAtOnce, running)
      await sleep(2500)
      running--
    },
    { log },
  )
  t.teardown(() => schedule.stop())
  t.equal(nodeCron.getTasks().size, tasksBefore + 1, 'one task in node-cron list')
  const next = schedule.next()
  t.ok(next && next.getTime() > Date.now() - 1000, 'the next time is known once started')
  // every second comes a time; each run takes 2.5 s: without noOverlap two or three would go at once
  const started = Date.now()
  await waitUntil('a second run', () => runs >= 2)
  t.comment(`the second run started after ${Date.now() - started} ms`)
  t.equal(mostAtOnce, 1, 'never two runs at once')
  await waitUntil('the second run to end', () => running === 0)
  const skipped = lines.filter((l) => l.level === 'warn' && /overlap/.test(l.msg)).length
  t.comment(`times skipped while a run went on: ${skipped}`)
  schedule.stop()
  t.equal(schedule.next(), null, 'a stopped schedule has no next time')
  t.equal(nodeCron.getTasks().size, tasksBefore, "stop takes the task out of node-cron's list")
  const stoppedAt = runs
  await sleep(1500)
  t.equal(runs, stoppedAt, 'a stopped schedule runs no more')
})

t.test('a run that fails is logged and the schedule goes on', async (t) => {
  const { lines, log } = collectingLog()
  let runs = 0
  const schedule = startSchedule(
    '* * * * * *',
    async () => {
      runs++
      throw new Error('boom')
    },
    { log },
  )
  t.teardown(() => schedule.stop())
  await waitUntil('two failed runs', () => runs >= 2)
  schedule.stop()
  t.ok(
    lines.some((l) => l.level === 'error' && l.msg === 'scheduled run failed'),
    'logged',
  )
})

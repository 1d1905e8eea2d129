// Cron schedules: the syntax the config documents (5 fields, or 6 with seconds first; names; L; day of
// month AND weekday), next times in local time, a real firing, and no second run while one goes on.
import t from 'tap'
import { isCronExpression, nextRun, startSchedule } from '../../src/schedule.js'

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
  ])
    t.notOk(isCronExpression(bad), JSON.stringify(bad))
})

t.test('next times, in local time', async (t) => {
  // Monday 2026-06-01 10:00 local
  const from = new Date(2026, 5, 1, 10, 0, 0)
  t.same(nextRun('0 3 * * 0', from), new Date(2026, 5, 7, 3, 0, 0), 'the next Sunday at 03:00')
  t.same(nextRun('0 2 * * *', from), new Date(2026, 5, 2, 2, 0, 0), 'tomorrow at 02:00')
  t.same(nextRun('30 0 12 * * *', from), new Date(2026, 5, 1, 12, 0, 30), 'seconds first with 6 fields')
  t.same(nextRun('0 0 L * *', from), new Date(2026, 5, 30, 0, 0, 0), 'L is the last day of the month')
  // both day fields set: a time must match both (the first Monday of a month), not either
  t.same(nextRun('0 4 1-7 * MON', from), new Date(2026, 6, 6, 4, 0, 0), 'the first Monday of July')
  t.same(nextRun('0 3 * * sunday', from), nextRun('0 3 * * 0', from), 'full day names, as node-cron took them')
  t.same(nextRun('0 0 1 september *', from), new Date(2026, 8, 1, 0, 0, 0), 'full month names')
})

t.test('a started schedule runs, never twice at once, and stops', async (t) => {
  let runs = 0
  let running = 0
  let overlapped = false
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const schedule = startSchedule('* * * * * *', async () => {
    runs++
    running++
    if (running > 1) overlapped = true
    await held
    running--
  })
  t.teardown(() => schedule.stop())
  const next = schedule.next()
  t.ok(next && next.getTime() > Date.now() - 1000, 'the next time is known once started')
  // the first run holds on for 3 s of every-second times: none of them may start a second run
  const started = Date.now()
  while (runs === 0 && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50))
  t.equal(runs, 1, 'it ran')
  await new Promise((r) => setTimeout(r, 3000))
  t.equal(runs, 1, 'no run started while one was going on')
  t.notOk(overlapped)
  release()
  schedule.stop()
  t.equal(schedule.next(), null, 'a stopped schedule has no next time')
  const after = runs
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(runs, after, 'a stopped schedule runs no more')
})

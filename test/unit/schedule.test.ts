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
    '0 22-2 * * *',
    '0 0 * * fri-mon',
    '0 0 1 nov-feb *',
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
  // ranges that wrap past a field's end, as node-cron took them
  t.same(nextRun('0 22-2 * * *', from), new Date(2026, 5, 1, 22, 0, 0), 'hours 22 to 2: tonight at 22:00')
  t.same(nextRun('0 22-2 * * *', new Date(2026, 5, 1, 23, 30)), new Date(2026, 5, 2, 0, 0, 0), '…then past midnight')
  t.same(nextRun('0 3 * * 0', new Date(2026, 5, 2, 3, 30)), nextRun('0 3 * * fri-mon', new Date(2026, 5, 6, 3, 30)))
  t.same(nextRun('0 0 * * sat-mon', from), new Date(2026, 5, 6, 0, 0, 0), 'Saturday to Monday: Saturday first')
  t.same(nextRun('0 0 1 nov-feb *', from), new Date(2026, 10, 1, 0, 0, 0), 'November to February')
  t.same(
    nextRun('0 0 22-2/2 * * *', new Date(2026, 5, 1, 22, 30)),
    new Date(2026, 5, 2, 0, 0, 0),
    'a step from the start',
  )
  t.same(nextRun('0 0 22-2/2 * * *', new Date(2026, 5, 2, 0, 30)), new Date(2026, 5, 2, 2, 0, 0))
})

t.test('across daylight-saving changes (Europe/Berlin)', async (t) => {
  const before = process.env.TZ
  process.env.TZ = 'Europe/Berlin'
  t.teardown(() => {
    if (before === undefined) delete process.env.TZ
    else process.env.TZ = before
  })
  // 29 March 2026: 02:00 becomes 03:00; 25 October 2026: 03:00 becomes 02:00
  t.same(nextRun('30 2 * * *', new Date('2026-03-28T23:00:00Z')), new Date('2026-03-29T01:00:00Z'), 'skipped: 03:00')
  const fallFirst = nextRun('30 2 * * *', new Date('2026-10-24T22:00:00Z'))
  t.same(fallFirst, new Date('2026-10-25T00:30:00Z'), 'repeated: the first 02:30…')
  t.same(nextRun('30 2 * * *', fallFirst!), new Date('2026-10-26T01:30:00Z'), '…and not the second')
  const intervals = [nextRun('*/30 * * * *', new Date('2026-10-25T00:15:00Z'))!]
  while (intervals.length < 4) intervals.push(nextRun('*/30 * * * *', intervals.at(-1)!)!)
  t.same(
    intervals.map((d) => d.toISOString()),
    ['2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T02:00:00.000Z'],
    'an interval runs on both passes of the repeated hour',
  )
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

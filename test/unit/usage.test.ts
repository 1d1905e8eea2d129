import t from 'tap'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { laterOf, mergeUsage, reconcileUsage, UsageTracker } from '../../src/inventory/usage.js'

const log = pino({ level: 'silent' })
const T = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString()

t.test('reconcile: new ids first seen now, gone ids forgotten, use times only move forward', async (t) => {
  const before = { a: { firstSeen: T(0), lastUsed: T(10) }, gone: { firstSeen: T(0), lastUsed: null } }
  const after = reconcileUsage(
    before,
    ['a', 'b'],
    new Map([
      ['a', T(5)],
      ['b', T(7)],
    ]),
    T(30),
  )
  t.same(after, { a: { firstSeen: T(0), lastUsed: T(10) }, b: { firstSeen: T(30), lastUsed: T(7) } })
  t.equal(laterOf(null, null), null)
  t.equal(laterOf(T(1), null), T(1))
  t.equal(
    laterOf('2026-01-01T00:00:00.5Z', '2026-01-01T00:00:00.400Z'),
    '2026-01-01T00:00:00.5Z',
    'compared as times, not text',
  )
})

t.test('merge with what another process wrote keeps the earliest first-seen and the latest last-used', async (t) => {
  const ours = { a: { firstSeen: T(5), lastUsed: T(5) }, b: { firstSeen: T(1), lastUsed: null } }
  const theirs = { a: { firstSeen: T(1), lastUsed: T(9) }, c: { firstSeen: T(0), lastUsed: T(0) } }
  t.same(
    mergeUsage(ours, theirs),
    { a: { firstSeen: T(1), lastUsed: T(9) }, b: { firstSeen: T(1), lastUsed: null } },
    'ids we no longer know stay forgotten',
  )
})

t.test('the record survives a restart', async (t) => {
  const dir = t.testdir()
  let now = new Date(T(0))
  const first = new UsageTracker({ stateDir: dir, log, now: () => now, writeDelayMs: 60_000 })
  await first.start()
  first.reconcile(['a', 'b'], new Map([['a', T(0)]]))
  t.notOk(existsSync(first.file), 'writes are gathered, not made at once')
  await first.stop()
  t.ok(existsSync(first.file), 'stop writes what is pending')
  now = new Date(T(60))
  const second = new UsageTracker({ stateDir: dir, log, now: () => now })
  await second.start()
  t.same(second.get('a'), { firstSeen: T(0), lastUsed: T(0) })
  t.same(second.get('b'), { firstSeen: T(0), lastUsed: null }, 'not first seen again after a restart')
  second.reconcile(['b'], new Map())
  second.flush()
  t.same(Object.keys(JSON.parse(readFileSync(second.file, 'utf8')).images), ['b'], 'a removed image is forgotten')
  t.same(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left behind',
  )
})

t.test('a damaged file is moved aside and the tracker starts afresh', async (t) => {
  for (const content of [
    '{"version":1,"images":{"a":{"firstSeen":',
    '{"version":2,"images":{}}',
    '{"version":1,"images":{"a":{"firstSeen":"yesterday","lastUsed":null}}}',
  ]) {
    const dir = t.testdir()
    const errors: string[] = []
    const spy = pino(
      { level: 'error' },
      {
        write: (line: string) => {
          errors.push(line)
        },
      },
    )
    writeFileSync(join(dir, 'image-usage.json'), content)
    const tracker = new UsageTracker({ stateDir: dir, log: spy })
    await tracker.start()
    t.equal(tracker.get('a'), undefined)
    t.ok(
      readdirSync(dir).some((f) => f.startsWith('image-usage.json.damaged-')),
      `moved aside: ${content.slice(0, 30)}`,
    )
    t.match(errors.join(''), /damaged/, 'and said so')
  }
})

t.test("reconcile: an image with no record is first seen at the runtime's last tag time", async (t) => {
  const tagTimes = new Map([
    ['pulled-before', '2026-01-01T00:03:00.123456789Z'],
    ['known', T(2)],
    ['future', T(50)],
    ['unreadable', 'not a time'],
  ])
  const after = reconcileUsage(
    { known: { firstSeen: T(1), lastUsed: null } },
    ['pulled-before', 'known', 'future', 'unreadable', 'no-tag-time'],
    new Map(),
    T(30),
    tagTimes,
  )
  t.equal(after['pulled-before'].firstSeen, '2026-01-01T00:03:00.123Z', 'the tag time, as an ISO time')
  t.equal(after.known.firstSeen, T(1), 'a record the agent keeps wins')
  t.equal(after.future.firstSeen, T(30), 'a tag time after now (a skewed clock) is not believed')
  t.equal(after.unreadable.firstSeen, T(30))
  t.equal(after['no-tag-time'].firstSeen, T(30), 'no tag time: when the agent first listed it')
})

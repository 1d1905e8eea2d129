// The host-wide prune lock on a real directory: prunes in two places run one after the other, a
// wait has an end, and a lock left by a process that died is taken over.
import t from 'tap'
import { mkdirSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { withPruneLock, PRUNE_LOCK } from '../../src/prune/lock.js'

const log = pino({ level: 'silent' })

t.test('two prunes run one after the other', async (t) => {
  const stateDir = t.testdir()
  const order: string[] = []
  let releaseFirst!: () => void
  const first = withPruneLock({ stateDir, log }, async () => {
    order.push('first starts')
    await new Promise<void>((r) => {
      releaseFirst = r
    })
    order.push('first ends')
  })
  await new Promise((r) => setTimeout(r, 50))
  const second = withPruneLock({ stateDir, log }, async () => {
    order.push('second runs')
  })
  await new Promise((r) => setTimeout(r, 50))
  releaseFirst()
  await Promise.all([first, second])
  t.same(order, ['first starts', 'first ends', 'second runs'])
})

t.test('a wait has an end, with a message that names the lock', async (t) => {
  const stateDir = t.testdir()
  let release!: () => void
  const holder = withPruneLock(
    { stateDir, log },
    () =>
      new Promise<void>((r) => {
        release = r
      }),
  )
  await new Promise((r) => setTimeout(r, 50))
  await t.rejects(
    withPruneLock({ stateDir, log, waitMs: 0 }, async () => 'ran'),
    /another prune holds .*prune\.lock/,
  )
  release()
  await holder
  t.equal(await withPruneLock({ stateDir, log, waitMs: 0 }, async () => 'ran'), 'ran', 'free again once released')
})

t.test('a lock whose holder died goes stale and is taken over', async (t) => {
  const stateDir = t.testdir()
  const lock = join(stateDir, PRUNE_LOCK)
  mkdirSync(lock)
  const longAgo = new Date(Date.now() - 120_000)
  utimesSync(lock, longAgo, longAgo)
  t.equal(await withPruneLock({ stateDir, log, waitMs: 0 }, async () => 'ran'), 'ran')
})

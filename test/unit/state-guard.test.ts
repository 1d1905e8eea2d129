import t from 'tap'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import { StateGuard, isNoSpace } from '../../src/state/guard.js'

const KiB = 1024
const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })

function setup(t: { teardown(fn: () => void): void }) {
  const stateDir = mkdtempSync(join(tmpdir(), 'gh-guard-'))
  const bus = new EventBus()
  const events: AgentEvent[] = []
  bus.subscribe((e) => events.push(e))
  const guard = new StateGuard({ stateDir, reserveBytes: 256 * KiB, bus, log: pino({ level: 'silent' }) })
  t.teardown(() => {
    guard.stop()
    rmSync(stateDir, { recursive: true, force: true })
  })
  return { stateDir, guard, events, settle: () => new Promise((r) => setImmediate(r)) }
}

t.test('a write out of space gets the reserve and goes through; the reserve comes back', async (t) => {
  const { guard, events, settle } = setup(t)
  guard.start()
  t.equal(statSync(guard.reserveFile).size, 256 * KiB, 'the reserve is made at start, real bytes')
  let tries = 0
  const out = guard.write('outbox', () => {
    if (tries++ === 0) throw noSpace()
    return 'written'
  })
  t.equal(out, 'written')
  t.notOk(existsSync(guard.reserveFile), 'released for the write')
  t.same(guard.errors, { outbox: 1, usage: 0 }, 'the failed attempt is counted')
  await settle()
  t.same(
    events.map((e) => e.type),
    [],
    'no failure to tell: the write went through',
  )
  guard.retryNow()
  t.equal(statSync(guard.reserveFile).size, 256 * KiB, 'made again once there is room')
})

t.test('a store that cannot write is told once per streak, retried, and told when it recovers', async (t) => {
  const { guard, events, settle } = setup(t)
  guard.start()
  let full = true
  let written = 0
  const write = () =>
    guard.write('usage', () => {
      if (full) throw noSpace()
      written++
    })
  guard.onRetry(() => {
    try {
      write()
    } catch {
      /* still full */
    }
  })
  t.throws(write)
  t.throws(write)
  await settle()
  t.same(
    events.map((e) => [e.type, 'store' in e.data ? e.data.store : undefined]),
    [['state.write_failed', 'usage']],
    'one event for the streak',
  )
  t.same(guard.failingStores(), ['usage'])
  t.ok(guard.errors.usage >= 2)
  guard.retryNow()
  t.equal(written, 0)
  full = false
  guard.retryNow()
  t.equal(written, 1, 'the retry wrote it')
  await settle()
  t.same(
    events.map((e) => e.type),
    ['state.write_failed', 'state.write_recovered'],
  )
  t.same(guard.failingStores(), [])
})

t.test('what counts as out of space', async (t) => {
  t.ok(isNoSpace(noSpace()))
  t.ok(isNoSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })))
  t.notOk(isNoSpace(Object.assign(new Error('permission denied'), { code: 'EACCES' })))
})

import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { FleetStore } from '../../src/coordinator/store.js'
import type { EventMessage, Hello } from '../../src/protocol.js'

function dataDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-fleet-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

const hello = (hostId: string): Hello => ({
  v: 1,
  id: `h-${hostId}`,
  ts: '2026-11-23T10:00:00.000Z',
  hostId,
  type: 'hello',
  version: '0.1.0',
  actions: ['status'],
  facts: { gpu: { available: true, driverVersion: '535.54.03' }, disk: { usedPercent: 50 }, images: { count: 2 } },
  labels: {},
})
const event = (id: string, hostId = 'a', eventType = 'pull.finished'): EventMessage => ({
  v: 1,
  id,
  ts: '2026-11-23T10:00:01.000Z',
  hostId,
  type: 'event',
  eventType,
  data: { n: id },
})

t.test('writes of one turn commit together; one that throws is rolled back alone', async (t) => {
  const store = new FleetStore(dataDir(t))
  t.teardown(() => store.close())
  const writes = [
    store.write(() => store.recordHello(hello('a'))),
    store.write(() => store.insertEvents([event('e1'), event('e2')])),
    store.write(() => {
      store.insertEvents([event('e3')])
      throw new Error('boom')
    }),
    store.write(() => store.insertEvents([event('e2'), event('e4')])),
  ]
  const outcomes = await Promise.allSettled(writes)
  t.same(
    outcomes.map((o) => o.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  )
  t.equal((outcomes[3] as PromiseFulfilledResult<number>).value, 1, 'a duplicate id is not stored again')
  t.same(
    store.events({ limit: 10 }).events.map((e) => e.id),
    ['e1', 'e2', 'e4'],
    'e3 was rolled back with its failed write',
  )
  t.match(store.host('a'), {
    hostId: 'a',
    connected: true,
    version: '0.1.0',
    gpu: { driverVersion: '535.54.03' },
    images: { count: 2 },
  })
})

t.test('events filter by host and type and page oldest first', async (t) => {
  const store = new FleetStore(dataDir(t))
  t.teardown(() => store.close())
  await store.write(() =>
    store.insertEvents([
      event('1', 'a', 'prune.started'),
      event('2', 'b', 'prune.started'),
      event('3', 'a', 'prune.finished'),
      event('4', 'a', 'prune.started'),
    ]),
  )
  t.same(
    store.events({ hostId: 'a', type: 'prune.started', limit: 10 }).events.map((e) => e.id),
    ['1', '4'],
  )
  const page = store.events({ limit: 2 }).events
  t.same(
    page.map((e) => e.id),
    ['1', '2'],
  )
  t.same(
    store.events({ after: page[1].seq, limit: 10 }).events.map((e) => e.id),
    ['3', '4'],
  )
  t.match(store.host('a'), null, 'events alone do not make a host')
})

t.test('state survives a restart; nobody is connected to a fresh process', async (t) => {
  const dir = dataDir(t)
  const first = new FleetStore(dir)
  await first.write(() => first.recordHello(hello('a')))
  const commandId = await first.write(() => first.createCommand('a', 'status', {}))
  first.close()
  const again = new FleetStore(dir)
  t.teardown(() => again.close())
  t.equal(again.host('a')?.connected, false)
  t.match(again.command(commandId), { status: 'pending', action: 'status', hostId: 'a' })
  t.equal(again.pendingCommands('a').length, 1)
})

t.test('a command runs, finishes once, and one left without a result fails after its timeout', async (t) => {
  let clock = new Date('2026-11-23T10:00:00.000Z')
  const store = new FleetStore(dataDir(t), () => clock)
  t.teardown(() => store.close())
  await store.write(() => store.recordHello(hello('a')))
  const done = await store.write(() => store.createCommand('a', 'prune', { dryRun: true }))
  const stuck = await store.write(() => store.createCommand('a', 'prune', {}))
  await store.write(() => {
    store.markRunning(done)
    store.markRunning(stuck)
  })
  t.equal(store.command(done)?.status, 'running')
  t.equal(
    await store.write(() => store.finishCommand('b', done, true, { freedBytes: 1 }, undefined)),
    false,
    'another host cannot finish it',
  )
  t.equal(await store.write(() => store.finishCommand('a', done, true, { freedBytes: 1 }, undefined)), true)
  t.match(store.command(done), { status: 'succeeded', result: { freedBytes: 1 }, args: { dryRun: true } })
  clock = new Date(clock.getTime() + 3599_000)
  t.equal(await store.write(() => store.expireCommands(3600)), 0, 'not yet')
  clock = new Date(clock.getTime() + 2000)
  t.equal(await store.write(() => store.expireCommands(3600)), 1)
  t.match(store.command(stuck), { status: 'failed', error: 'no result within 3600 s' })
  t.same(
    store.commandCounts().sort((x, y) => x.status.localeCompare(y.status)),
    [
      { action: 'prune', status: 'failed', n: 1 },
      { action: 'prune', status: 'succeeded', n: 1 },
    ],
  )
})

t.test('lastPrune and lastPrewarm keep the newest by event time, not by arrival', async (t) => {
  const store = new FleetStore(dataDir(t))
  t.teardown(() => store.close())
  await store.write(() => store.recordHello(hello('a')))
  const at = (id: string, eventType: string, ts: string): EventMessage => ({ ...event(id, 'a', eventType), ts })
  await store.write(() => store.insertEvents([at('p2', 'prune.finished', '2026-11-23T10:05:00.000Z')]))
  await store.write(() => store.insertEvents([at('p1', 'prune.finished', '2026-11-23T10:01:00.000Z')]))
  t.equal(store.host('a')!.lastPrune!.n, 'p2', 'an older event resent late does not replace the newer')
  await store.write(() => store.insertEvents([at('w1', 'prewarm.finished', '2026-11-23T11:00:00.000+01:00')]))
  await store.write(() => store.insertEvents([at('w2', 'prewarm.finished', '2026-11-23T10:30:00.000Z')]))
  t.equal(store.host('a')!.lastPrewarm!.n, 'w2', 'times compare as instants across offsets')
  const snapshot = {
    v: 1 as const,
    id: 's1',
    ts: '2026-11-23T10:06:00.000Z',
    hostId: 'a',
    type: 'snapshot' as const,
    gpu: {},
    disk: null,
    images: null,
    localImages: null,
    lastPrune: { ts: '2026-11-23T10:00:00.000Z', n: 'stale' },
    lastPrewarm: null,
  }
  await store.write(() => store.recordSnapshot(snapshot))
  t.equal(store.host('a')!.lastPrune!.n, 'p2', 'nor does a snapshot that knows only an older one')
})

t.test('labels: from the hello, replaced by a snapshot that has them, kept by one that has not', async (t) => {
  const dir = dataDir(t)
  // a database made before hosts had labels
  const old = new Database(join(dir, 'coordinator.db'))
  old.exec(`CREATE TABLE hosts (hostId TEXT PRIMARY KEY, connected INTEGER NOT NULL DEFAULT 0, lastSeen TEXT,
    version TEXT, actions TEXT, gpu TEXT, disk TEXT, images TEXT, localImages TEXT, lastPrune TEXT, lastPrewarm TEXT)`)
  old.prepare("INSERT INTO hosts (hostId, connected) VALUES ('old', 0)").run()
  old.close()
  const store = new FleetStore(dir)
  t.teardown(() => store.close())
  t.same(store.host('old')!.labels, {}, 'an existing database gains the column; a host without labels has none')
  await store.write(() => store.recordHello({ ...hello('a'), labels: { rack: 'a' } }))
  t.same(store.host('a')!.labels, { rack: 'a' })
  const snapshot = {
    v: 1 as const,
    id: 's1',
    ts: '2026-11-23T10:06:00.000Z',
    hostId: 'a',
    type: 'snapshot' as const,
    gpu: {},
    disk: null,
    images: null,
    localImages: null,
    lastPrune: null,
    lastPrewarm: null,
  }
  await store.write(() => store.recordSnapshot({ ...snapshot, labels: { rack: 'b', gpu: 'h100' } }))
  t.same(store.host('a')!.labels, { rack: 'b', gpu: 'h100' })
  await store.write(() => store.recordSnapshot({ ...snapshot, id: 's2' }))
  t.same(store.host('a')!.labels, { rack: 'b', gpu: 'h100' }, 'a snapshot without labels changes nothing')
})

// The SQLite engine's own behaviour: its group commit and its migrations. What every fleet store
// does, SQLite and PostgreSQL alike, is test/integration/fleet-store.test.ts.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { SqliteFleet, SQLITE_SCHEMA_VERSION } from '../../src/coordinator/store/sqlite/engine.js'
import { event, hello } from '../support/fleet-messages.js'

function dataDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-fleet-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('writes of one turn commit together; one that throws is rolled back alone', async (t) => {
  const store = new SqliteFleet(dataDir(t))
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

t.test('a database from before versioning gains the labels column; labels from hello and snapshots', async (t) => {
  const dir = dataDir(t)
  // a database made before hosts had labels
  const old = new Database(join(dir, 'coordinator.db'))
  old.exec(`CREATE TABLE hosts (hostId TEXT PRIMARY KEY, connected INTEGER NOT NULL DEFAULT 0, lastSeen TEXT,
    version TEXT, actions TEXT, gpu TEXT, disk TEXT, images TEXT, localImages TEXT, lastPrune TEXT, lastPrewarm TEXT)`)
  old.prepare("INSERT INTO hosts (hostId, connected) VALUES ('old', 0)").run()
  old.close()
  const store = new SqliteFleet(dir)
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

t.test('a database of a newer schema is refused with the versions named, and left as it is', async (t) => {
  const dir = dataDir(t)
  new SqliteFleet(dir).close()
  const db = new Database(join(dir, 'coordinator.db'))
  db.pragma('user_version = 99')
  db.close()
  t.throws(() => new SqliteFleet(dir), {
    name: 'StoreOpenError',
    message: /schema version 99, newer than this coordinator knows \(\d+\): upgrade this coordinator/,
  })
  const after = new Database(join(dir, 'coordinator.db'))
  t.teardown(() => after.close())
  t.equal(after.pragma('user_version', { simple: true }), 99)
})

t.test('a database made before versioning is migrated once and keeps its rows', async (t) => {
  const dir = dataDir(t)
  const first = new SqliteFleet(dir)
  await first.write(() => first.recordHello(hello('a')))
  first.close()
  const db = new Database(join(dir, 'coordinator.db'))
  db.pragma('user_version = 0')
  db.close()
  const again = new SqliteFleet(dir)
  t.teardown(() => again.close())
  t.equal(again.host('a')?.hostId, 'a')
  const check = new Database(join(dir, 'coordinator.db'), { readonly: true })
  t.teardown(() => check.close())
  t.equal(check.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION)
})

// One suite for every fleet store: each test runs on SQLite in a temporary dataDir and on a private
// PostgreSQL (a fresh database per test). Then what only a shared PostgreSQL store does: replicas.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import pino from 'pino'
import type { Clock } from '../../src/core/clock.js'
import type { FleetStore } from '../../src/coordinator/store/fleet-store.js'
import { PostgresFleetStore } from '../../src/coordinator/store/postgres/fleet.js'
import { SqliteFleetStore } from '../../src/coordinator/store/sqlite/fleet-store.js'
import type { EventMessage } from '../../src/protocol.js'
import { startPostgres, type RunningPostgres } from '../harness/postgres.js'
import { requireServices } from '../harness/services.js'
import { waitFor } from '../harness/ports.js'
import { commandResult, event, hello, snapshot } from '../support/fleet-messages.js'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

/** A store's backing (a dataDir, a database) and a way to open a store (again) on it. */
interface StoreKind {
  name: 'sqlite' | 'postgres'
  backing(t: Teardown): Promise<(now?: Clock) => Promise<FleetStore>>
}

const log = pino({ level: 'silent' })
let server: RunningPostgres | null = null
let databases = 0

const KINDS: StoreKind[] = [
  {
    name: 'sqlite',
    backing: async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'gh-fleet-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      return async (now) => new SqliteFleetStore(dir, now)
    },
  },
  {
    name: 'postgres',
    backing: async () => {
      const url = await server!.createDatabase(`fleet_${++databases}`)
      return (now) => PostgresFleetStore.open({ url, poolSize: 4, heartbeatSeconds: 5, log, now })
    },
  },
]

/** opens a store on a fresh backing, closed on teardown */
async function fresh(t: Teardown, kind: StoreKind, now?: Clock): Promise<FleetStore> {
  const open = await kind.backing(t)
  const store = await open(now)
  t.teardown(() => store.close())
  return store
}

const result = (commandId: string, hostId: string, ok = true) => commandResult(hostId, commandId, ok, { freedBytes: 1 })

if (requireServices(t, ['/usr/lib/postgresql/15/bin/pg_ctl'])) {
  server = await startPostgres(t, { durable: false })

  for (const kind of KINDS) {
    t.test(kind.name, async (t) => {
      t.test('events are stored once by id, filter by host and type and page oldest first', async (t) => {
        const store = await fresh(t, kind)
        await store.recordHello(hello('a'))
        const first = await store.recordBatch(
          'a',
          [event('1', 'a', 'prune.started'), event('2', 'b', 'prune.started')],
          [],
        )
        t.same(first, { added: 2, unknownResults: [] })
        const again = await store.recordBatch(
          'a',
          [event('2', 'b', 'prune.started'), event('3', 'a', 'prune.finished'), event('3', 'a', 'prune.finished')],
          [],
        )
        t.equal(again.added, 1, 'a resent id and an id twice in one batch count once')
        await store.recordBatch('a', [event('4', 'a', 'prune.started')], [])
        t.equal(await store.eventCount(), 4)
        const ids = async (f: Parameters<FleetStore['events']>[0]) => (await store.events(f)).map((e) => e.id)
        t.same(await ids({ hostId: 'a', type: 'prune.started', limit: 10 }), ['1', '4'])
        const page = await store.events({ limit: 2 })
        t.same(
          page.map((e) => e.id),
          ['1', '2'],
        )
        t.same(await ids({ after: page[1].seq, limit: 10 }), ['3', '4'])
        t.match(page[0], { hostId: 'a', type: 'prune.started', ts: '2026-11-23T10:00:01.000Z', data: { n: '1' } })
        t.equal(await store.host('b'), null, 'events alone do not make a host')
      })

      t.test('hosts: hello, snapshot, labels, disconnect; state survives a restart', async (t) => {
        const open = await kind.backing(t)
        const store = await open()
        await store.recordHello({ ...hello('b'), labels: { rack: 'a' } })
        await store.recordHello(hello('a'))
        t.match(await store.host('b'), {
          hostId: 'b',
          connected: true,
          version: '0.1.0',
          gpu: { driverVersion: '535.54.03' },
          images: { count: 2 },
          labels: { rack: 'a' },
          actions: ['status'],
        })
        await store.recordSnapshot({ ...snapshot('b'), labels: { rack: 'b', gpu: 'h100' } })
        t.same((await store.host('b'))!.labels, { rack: 'b', gpu: 'h100' })
        await store.recordSnapshot({ ...snapshot('b'), id: 's2' })
        t.same((await store.host('b'))!.labels, { rack: 'b', gpu: 'h100' }, 'a snapshot without labels changes nothing')
        t.equal((await store.host('a'))!.peers, null, 'a host that does not serve peers advertises nothing')
        const serving = { url: 'http://10.0.3.7:9479', maxUploads: 3 }
        await store.recordHello({ ...hello('a'), facts: { ...hello('a').facts, peers: serving } })
        t.same((await store.host('a'))!.peers, serving, "the peer listener of the host's hello")
        t.same((await store.hosts()).find((h) => h.hostId === 'a')!.peers, serving, 'in the list of hosts too')
        await store.recordHello(hello('a'))
        t.equal((await store.host('a'))!.peers, null, 'a hello without it: the host no longer serves')
        t.equal((await store.host('a'))!.host, null, 'no host facts in the hello: none stored')
        const facts = {
          readAt: '2026-12-04T20:47:00.000Z',
          os: { distro: 'Ubuntu', release: '22.04', kernel: '5.15.0-105-generic', arch: 'x86_64' },
          cpu: { manufacturer: 'AMD', brand: 'EPYC 7742', physicalCores: 128, cores: 256 },
          memory: { totalBytes: 2164197146624 },
          system: { manufacturer: 'NVIDIA', model: 'DGXA100', virtual: false },
          blockDevices: [{ name: 'nvme0n1', type: 'disk', sizeBytes: 3840755982336, mount: '/raid' }],
          blockDevicesOmitted: 0,
          unavailable: [],
        }
        await store.recordHello({
          ...hello('b'),
          labels: { rack: 'b', gpu: 'h100' },
          facts: { ...hello('b').facts, host: facts },
        })
        t.same((await store.host('b'))!.host, facts, 'the host facts of its hello')
        await store.recordHello({ ...hello('a'), facts: { ...hello('a').facts, peers: serving } })
        t.same(
          (await store.hosts()).map((h) => h.hostId),
          ['a', 'b'],
        )
        t.equal(await store.hostCount(), 2)
        await store.recordDisconnect('a')
        t.equal((await store.host('a'))!.connected, false)
        const commandId = await store.createCommand('b', 'status', {})
        await store.close()
        const again = await open()
        t.teardown(() => again.close())
        t.equal((await again.host('b'))!.connected, false, 'nobody is connected to a store that closed')
        t.same((await again.host('a'))!.peers, { url: 'http://10.0.3.7:9479', maxUploads: 3 }, 'kept across a restart')
        t.equal((await again.host('b'))!.host?.cpu.cores, 256, 'host facts kept across a restart')
        t.match(await again.command(commandId), { status: 'pending', action: 'status', hostId: 'b' })
        t.same(
          (await again.pendingCommands('b')).map((c) => c.commandId),
          [commandId],
        )
      })

      t.test('a command runs, finishes once, and one left without a result fails after its timeout', async (t) => {
        let clock = new Date('2026-11-23T10:00:00.000Z')
        const store = await fresh(t, kind, () => clock)
        await store.recordHello(hello('a'))
        const done = await store.createCommand('a', 'prune', { dryRun: true })
        const stuck = await store.createCommand('a', 'prune', {})
        t.same((await store.hostsWithPendingCommands()).sort(), ['a'])
        await store.markRunning(done)
        await store.markRunning(stuck)
        t.equal((await store.command(done))?.status, 'running')
        t.same(
          (await store.recordBatch('b', [], [result(done, 'b')])).unknownResults,
          [done],
          'another host cannot finish it',
        )
        t.same((await store.recordBatch('a', [], [result(done, 'a')])).unknownResults, [])
        t.match(await store.command(done), { status: 'succeeded', result: { freedBytes: 1 }, args: { dryRun: true } })
        t.same(
          (await store.commands({ hostId: 'a', limit: 1 })).map((c) => c.commandId),
          [stuck],
          'the newest, when limited',
        )
        t.same(
          (await store.commands({ status: 'succeeded', limit: 10 })).map((c) => c.commandId),
          [done],
        )
        clock = new Date(clock.getTime() + 3599_000)
        t.equal(await store.expireCommands(3600), 0, 'not yet')
        clock = new Date(clock.getTime() + 2000)
        t.equal(await store.expireCommands(3600), 1)
        t.match(await store.command(stuck), { status: 'failed', error: 'no result within 3600 s' })
        // A result arriving after the timeout (or a second one) changes nothing already read.
        t.same((await store.recordBatch('a', [], [result(stuck, 'a')])).unknownResults, [], 'known, not an error')
        t.match(await store.command(stuck), { status: 'failed', error: 'no result within 3600 s' })
        t.same((await store.recordBatch('a', [], [result(done, 'a', false)])).unknownResults, [])
        t.match(await store.command(done), { status: 'succeeded', result: { freedBytes: 1 } }, 'the first result stays')
        t.same(await store.hostsWithPendingCommands(), [])
        t.same(
          (await store.commandCounts()).sort((x, y) => x.status.localeCompare(y.status)),
          [
            { action: 'prune', status: 'failed', n: 1 },
            { action: 'prune', status: 'succeeded', n: 1 },
          ],
        )
      })

      t.test('a command unless one of its action waits; listeners hear of each new command', async (t) => {
        const store = await fresh(t, kind)
        const heard: string[] = []
        store.onCommandCreated((hostId) => heard.push(hostId))
        await store.recordHello(hello('a'))
        const first = await store.createCommandUnlessWaiting('a', 'prune', {})
        t.ok('commandId' in first)
        const second = await store.createCommandUnlessWaiting('a', 'prune', {})
        t.same(second, { waiting: (first as { commandId: string }).commandId })
        t.ok('commandId' in (await store.createCommandUnlessWaiting('a', 'status', {})), 'another action is not held')
        await waitFor('both creations heard', () => heard.length === 2, 10_000, 20)
        t.same(heard, ['a', 'a'])
      })

      t.test('rollouts: created, stepped with their commands, paused, finished, read back', async (t) => {
        const open = await kind.backing(t)
        const store = await open()
        const heard: string[] = []
        store.onCommandCreated((hostId) => heard.push(hostId))
        const spec = { images: ['reg/a:1'], selector: '', maxParallelHosts: 1, maxFailedHosts: null, replaces: [] }
        const started = { type: 'rollout.started', hostId: 'coordinator', data: { rolloutId: 'r1' } }
        await store.rollouts.createRollout('r1', spec, ['a', 'b'], [started])
        t.match(await store.rollouts.rollout('r1'), {
          state: 'running',
          spec,
          hosts: [
            { hostId: 'a', state: 'pending', commandId: null, images: [], bytesPulled: 0 },
            { hostId: 'b', state: 'pending', commandId: null },
          ],
        })
        t.equal(await store.rollouts.addRolloutHost('r1', 'a'), false, 'a host is in a rollout once')
        t.equal(await store.rollouts.addRolloutHost('r1', 'c'), true)
        const step = {
          expect: 'running' as const,
          hosts: [
            { hostId: 'a', patch: { state: 'running' as const, startedAt: 'T1' }, prewarm: { images: ['reg/a:1'] } },
          ],
          finish: null,
          events: [],
        }
        t.equal(await store.rollouts.applyRolloutChanges('r1', step), true)
        const commandId = (await store.rollouts.rollout('r1'))!.hosts[0].commandId!
        t.match(await store.command(commandId), { hostId: 'a', action: 'prewarm', args: { images: ['reg/a:1'] } })
        await waitFor('the prewarm heard', () => heard.includes('a'), 10_000, 20)
        const paused = await store.rollouts.transitionRollout('r1', ['running'], 'paused', () => [])
        t.equal(paused, true)
        t.equal(await store.rollouts.transitionRollout('r1', ['running'], 'paused', () => []), false)
        t.equal(await store.rollouts.transitionRollout('nope', ['running'], 'paused', () => []), null)
        t.equal(
          await store.rollouts.applyRolloutChanges('r1', step),
          false,
          'a step planned before the pause is refused',
        )
        t.equal(await store.rollouts.addRolloutHost('r1', 'd'), false, 'no host joins a paused rollout')
        t.same(await store.rollouts.activeRolloutIds(), ['r1'])
        await store.close()
        const again = await open()
        t.teardown(() => again.close())
        t.equal(await again.rollouts.transitionRollout('r1', ['paused'], 'running', () => []), true)
        const finish = {
          expect: 'running' as const,
          hosts: [
            {
              hostId: 'a',
              patch: {
                state: 'succeeded' as const,
                bytesPulled: 1000,
                finishedAt: 'T2',
                images: [
                  {
                    ref: 'reg/a:1',
                    status: 'pulled' as const,
                    reason: '',
                    bytesPulled: 1000,
                    sourceKind: 'peer' as const,
                  },
                ],
              },
            },
            {
              hostId: 'b',
              patch: {
                state: 'succeeded' as const,
                bytesPulled: 24,
                images: [
                  {
                    ref: 'reg/a:1',
                    status: 'pulled' as const,
                    reason: '',
                    bytesPulled: 24,
                    sourceKind: 'registry' as const,
                  },
                  {
                    ref: 'reg/b:1',
                    status: 'present' as const,
                    reason: '',
                    bytesPulled: 0,
                    sourceKind: 'mirror' as const,
                  },
                ],
              },
            },
            { hostId: 'c', patch: { state: 'skipped' as const, reason: 'gone' } },
          ],
          finish: 'succeeded' as const,
          events: [{ type: 'rollout.finished', hostId: 'coordinator', data: { rolloutId: 'r1' } }],
        }
        t.equal(await again.rollouts.applyRolloutChanges('r1', finish), true)
        t.same(await again.rollouts.activeRolloutIds(), [])
        const done = (await again.rollouts.rollout('r1'))!
        t.ok(done.finishedAt)
        t.match(done.hosts, [
          { hostId: 'a', commandId, state: 'succeeded' },
          { state: 'succeeded' },
          { reason: 'gone' },
        ])
        t.equal(await again.rollouts.rolloutBytesPulled(), 1024)
        t.same(
          (await again.rollouts.rolloutBytesBySource()).sort((x, y) => x.sourceKind.localeCompare(y.sourceKind)),
          [
            { sourceKind: 'peer', n: 1000 },
            { sourceKind: 'registry', n: 24 },
          ],
          'bytes of pulled images by source; an image present already counts nothing',
        )
        t.same(await again.rollouts.rolloutCounts(), [{ state: 'succeeded', n: 1 }])
        t.same(
          (await again.rollouts.rolloutHostCounts()).sort((x, y) => x.state.localeCompare(y.state)),
          [
            { state: 'skipped', n: 1 },
            { state: 'succeeded', n: 2 },
          ],
        )
        t.same(
          (await again.events({ hostId: 'coordinator', limit: 10 })).map((e) => e.type),
          ['rollout.started', 'rollout.finished'],
        )
        t.same(
          (await again.rollouts.rollouts(10)).map((r) => r.id),
          ['r1'],
        )
      })

      t.test('lastPrune and lastPrewarm keep the newest by event time, not by arrival', async (t) => {
        const store = await fresh(t, kind)
        await store.recordHello(hello('a'))
        const at = (id: string, eventType: string, ts: string): EventMessage => ({ ...event(id, 'a', eventType), ts })
        await store.recordBatch('a', [at('p2', 'prune.finished', '2026-11-23T10:05:00.000Z')], [])
        await store.recordBatch('a', [at('p1', 'prune.finished', '2026-11-23T10:01:00.000Z')], [])
        t.equal((await store.host('a'))!.lastPrune!.n, 'p2', 'an older event resent late does not replace the newer')
        await store.recordBatch('a', [at('w1', 'prewarm.finished', '2026-11-23T11:00:00.000+01:00')], [])
        await store.recordBatch('a', [at('w2', 'prewarm.finished', '2026-11-23T10:30:00.000Z')], [])
        t.equal((await store.host('a'))!.lastPrewarm!.n, 'w2', 'times compare as instants across offsets')
        await store.recordSnapshot({ ...snapshot('a'), lastPrune: { ts: '2026-11-23T10:00:00.000Z', n: 'stale' } })
        t.equal((await store.host('a'))!.lastPrune!.n, 'p2', 'nor does a snapshot that knows only an older one')
        await store.recordSnapshot({ ...snapshot('a'), lastPrune: { ts: '2026-11-23T10:07:00.000Z', n: 'new' } })
        t.equal((await store.host('a'))!.lastPrune!.n, 'new', 'a snapshot with a newer one does')
      })
    })
  }

  t.test('postgres: replicas sharing one database', async (t) => {
    const url = await server!.createDatabase('replicas')
    const open = (heartbeatSeconds = 5) => PostgresFleetStore.open({ url, poolSize: 4, heartbeatSeconds, log })
    const a = await open()
    const b = await open()
    t.teardown(() => Promise.all([a.close(), b.close()]))

    t.test('an event sent through both replicas at once is stored once', async (t) => {
      const events = Array.from({ length: 200 }, (_, i) => event(`dup-${i}`, 'h1'))
      const [viaA, viaB] = await Promise.all([a.recordBatch('h1', events, []), b.recordBatch('h1', events, [])])
      t.equal(viaA.added + viaB.added, 200)
      t.equal((await a.events({ hostId: 'h1', limit: 1000 })).length, 200)
    })

    t.test('a command created through one replica is heard by the other; its result is read by both', async (t) => {
      const heard: string[] = []
      b.onCommandCreated((hostId) => heard.push(hostId))
      await b.recordHello(hello('h2'))
      const commandId = await a.createCommand('h2', 'status', {})
      await waitFor('the other replica to hear of it', () => heard.includes('h2'), 10_000, 20)
      await b.recordBatch('h2', [], [result(commandId, 'h2')])
      t.match(await a.command(commandId), { status: 'succeeded', result: { freedBytes: 1 } })
    })

    t.test('the same alert through both replicas makes one prune', async (t) => {
      await a.recordHello(hello('h3'))
      const outcomes = await Promise.all([
        a.createCommandUnlessWaiting('h3', 'prune', {}),
        b.createCommandUnlessWaiting('h3', 'prune', {}),
      ])
      t.equal(outcomes.filter((o) => 'commandId' in o).length, 1)
      t.equal(outcomes.filter((o) => 'waiting' in o).length, 1)
    })

    t.test("a replica's late disconnect leaves the host's newer connection to another", async (t) => {
      await a.recordHello(hello('h4'))
      await b.recordHello(hello('h4'))
      await a.recordDisconnect('h4')
      t.equal((await a.host('h4'))!.connected, true)
      await b.recordDisconnect('h4')
      t.equal((await a.host('h4'))!.connected, false)
    })

    t.test("a silent replica's hosts are disconnected and its sent commands go back to pending", async (t) => {
      const db = new pg.Client({ connectionString: url })
      await db.connect()
      t.teardown(() => db.end())
      // A replica that died without a word: its last beat a minute ago, a host and a sent command on it.
      await db.query("INSERT INTO replicas VALUES ('gone', now() - interval '2 min', now() - interval '1 min')")
      await db.query("INSERT INTO hosts (host_id, connected, replica) VALUES ('h5', true, 'gone')")
      const commandId = await a.createCommand('h5', 'status', {})
      await a.markRunning(commandId)
      const watcher = await open(0.2)
      t.teardown(() => watcher.close())
      await waitFor('the silent replica reaped', async () => !(await a.host('h5'))!.connected, 10_000, 50)
      t.equal((await a.command(commandId))!.status, 'pending', 'sent again when the host says hello')
      const { rows } = await db.query("SELECT id FROM replicas WHERE id = 'gone'")
      t.equal(rows.length, 0)
    })

    t.test('a replica taken for dead while its connections lived marks its hosts connected again', async (t) => {
      const db = new pg.Client({ connectionString: url })
      await db.connect()
      t.teardown(() => db.end())
      const live = await open(0.2)
      t.teardown(() => live.close())
      await live.recordHello(hello('h6'))
      // As another replica does after three silent beats (the database was away): row gone, host off.
      await waitFor('the first beat', async () => (await db.query('SELECT 1 FROM replicas')).rowCount! >= 3, 10_000, 50)
      await db.query("DELETE FROM replicas WHERE id <> 'x'")
      await db.query("UPDATE hosts SET connected = false, replica = NULL WHERE host_id = 'h6'")
      await waitFor('h6 marked again by its replica', async () => (await live.host('h6'))!.connected, 10_000, 50)
    })

    t.test('one replica at a time holds a lease; another takes it when it runs out or is handed back', async (t) => {
      t.equal(await a.holdLease('drive', 0.5), true)
      t.equal(await a.holdLease('drive', 0.5), true, 'renewed by its holder')
      t.equal(await b.holdLease('drive', 0.5), false)
      await waitFor('the lease to run out', () => b.holdLease('drive', 60), 10_000, 100)
      t.equal(await a.holdLease('drive', 60), false)
      const c = await open()
      t.equal(await c.holdLease('other', 60), true)
      await c.close()
      t.equal(await a.holdLease('other', 60), true, 'handed back on close')
    })

    t.test('a database of a newer schema is refused with the versions named', async (t) => {
      const db = new pg.Client({ connectionString: url })
      await db.connect()
      t.teardown(() => db.end())
      await db.query('INSERT INTO gpuhost_schema (version) VALUES (99)')
      await t.rejects(open(), {
        name: 'StoreOpenError',
        message: /has schema version 99, newer than this coordinator knows \(\d+\): upgrade this coordinator/,
      })
      await db.query('DELETE FROM gpuhost_schema WHERE version = 99')
    })
  })
}

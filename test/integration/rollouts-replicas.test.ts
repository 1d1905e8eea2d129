// Rollouts on PostgreSQL with two replicas: one drives them (it holds the lease), the other stores
// what its API receives and leaves the steps alone; when the driving replica stops, the other takes
// the lease and carries the rollout on from the stored state.
import t from 'tap'
import pino from 'pino'
import { PostgresFleetStore } from '../../src/coordinator/store/postgres/fleet.js'
import { RolloutDriver } from '../../src/coordinator/rollouts/driver.js'
import { startPostgres } from '../harness/postgres.js'
import { waitFor } from '../harness/ports.js'
import { requireServices } from '../harness/services.js'
import { commandResult, hello } from '../support/fleet-messages.js'

const log = pino({ level: 'silent' })
const spec = { images: ['reg.local/a:1'], selector: '', maxParallelHosts: 1, maxFailedHosts: null, replaces: [] }
const done = (hostId: string, commandId: string) =>
  commandResult(hostId, commandId, true, {
    results: [{ ref: spec.images[0], status: 'pulled', reason: 'r', bytesPulled: 10 }],
  })

if (requireServices(t, ['/usr/lib/postgresql/15/bin/pg_ctl'])) {
  t.test('one replica drives rollouts; another takes over when it stops', async (t) => {
    const server = await startPostgres(t, { durable: false })
    const url = await server.createDatabase('rollouts')
    const open = () => PostgresFleetStore.open({ url, poolSize: 4, heartbeatSeconds: 1, log })
    const a = await open()
    const b = await open()
    t.teardown(() => b.close())
    const drive = (store: PostgresFleetStore) =>
      new RolloutDriver({ store, evaluator: null, log, tickSeconds: 3600, leaseSeconds: 1 })
    const driverA = drive(a)
    const driverB = drive(b)
    await driverA.wake()
    for (const h of ['h1', 'h2']) await a.recordHello(hello(h))

    // Created through B, which does not hold the lease: stored, not stepped there.
    const created = await driverB.create(spec)
    t.same(
      created.hosts.map((h) => h.state),
      ['pending', 'pending'],
      'B leaves the steps to the driving replica',
    )
    await driverA.wake()
    const first = (await a.rollouts.rollout(created.id))!.hosts.find((h) => h.state === 'running')!
    t.ok(first?.commandId, 'A started one host')
    await driverB.wake()
    t.equal(
      (await b.rollouts.rollout(created.id))!.hosts.filter((h) => h.state === 'running').length,
      1,
      'B started none',
    )

    // A stops (its lease handed back, its hosts disconnected); B takes over and carries on.
    await driverA.stop()
    await a.close()
    // Its hosts reconnect to B.
    for (const h of ['h1', 'h2']) await b.recordHello(hello(h))
    await b.recordBatch(first.hostId, [], [done(first.hostId, first.commandId!)])
    await waitFor(
      'B to drive the next host',
      async () => {
        await driverB.wake()
        const r = (await b.rollouts.rollout(created.id))!
        return r.hosts.some((h) => h.hostId !== first.hostId && h.state === 'running')
      },
      10_000,
      100,
    )
    const r = (await b.rollouts.rollout(created.id))!
    t.match(
      r.hosts.find((h) => h.hostId === first.hostId),
      { state: 'succeeded', bytesPulled: 10 },
      'the result recorded by the new driver',
    )
    t.equal(r.hosts.filter((h) => h.commandId).length, 2, 'each host asked once')
    await driverB.stop()
  })
}

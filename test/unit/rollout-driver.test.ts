// The rollout driver over a real fleet store (SQLite in a temp dir): the commands it creates, the
// hosts it skips from the stored facts without a command, results recorded, a host joining later,
// and a new store and driver on the same data carrying on once the hosts are back.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { CompatEvaluator } from '../../src/coordinator/compat.js'
import { RolloutDriver } from '../../src/coordinator/rollouts/driver.js'
import { SqliteFleetStore } from '../../src/coordinator/store/sqlite/fleet-store.js'
import type { Hello, SnapshotMessage } from '../../src/protocol.js'
import { commandResult, hello as fleetHello } from '../support/fleet-messages.js'

const CUDA12 = 'reg.local/team/cuda12:1'
const PLAIN = 'reg.local/team/plain:1'

const hello = (hostId: string, cudaVersion: string, labels: Record<string, string> = { pool: 'train' }): Hello =>
  fleetHello(hostId, {
    actions: ['prewarm'],
    facts: { gpu: { available: true, driverVersion: 'x', cudaVersion, gpus: [] } },
    labels,
  })

/** a host that already holds the CUDA 12 image and reported its requirement */
const holder = (hostId: string): SnapshotMessage => ({
  v: 1,
  id: `s-${hostId}`,
  ts: '2026-11-23T10:00:01.000Z',
  hostId,
  type: 'snapshot',
  gpu: { available: true, driverVersion: 'x', cudaVersion: '12.2', gpus: [] },
  disk: null,
  images: null,
  localImages: [
    {
      id: 'sha256:c12',
      repoTags: [CUDA12],
      repoDigests: [],
      sizeBytes: 1,
      cudaEnv: { NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' },
      compat: null,
    },
  ],
  lastPrune: null,
  lastPrewarm: null,
})

const evaluator: CompatEvaluator = (env, gpu) => ({
  compatible: Number(gpu.cudaVersion) >= 12.2,
  reason: `${env.NVIDIA_REQUIRE_CUDA} against CUDA ${gpu.cudaVersion}`,
})

function setup(t: { teardown(fn: () => Promise<void>): void }, dir: string) {
  const store = new SqliteFleetStore(dir)
  const dispatched: string[] = []
  // What the hub would send: every command created for a host.
  store.onCommandCreated((h) => dispatched.push(h))
  const driver = new RolloutDriver({ store, evaluator, log: pino({ level: 'silent' }), tickSeconds: 3600 })
  t.teardown(() => store.close())
  return { store, driver, dispatched }
}

const result = commandResult

const pulled = (ref: string) => ({
  ref,
  status: 'pulled',
  reason: 'r',
  source: null,
  durationSeconds: 1,
  bytesPulled: 100,
})

t.test('skips from stored facts, one host at a time, results recorded, a later host joins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rollout-driver-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { store, driver, dispatched } = setup(t, dir)
  const hellos = [hello('a-holder', '12.2'), hello('b-old', '11.4'), hello('c-old-only', '11.4')]
  for (const h of [...hellos, hello('x-other', '12.2', { pool: 'serve' })]) await store.recordHello(h)
  await store.recordSnapshot(holder('a-holder'))

  const one = await driver.create({
    images: [CUDA12],
    selector: 'pool=train',
    maxParallelHosts: 5,
    maxFailedHosts: null,
    replaces: [],
  })
  t.same(
    one.hosts.map((h) => h.hostId),
    ['a-holder', 'b-old', 'c-old-only'],
    'the selector picks the hosts',
  )
  t.match(one.hosts[1], { state: 'skipped', commandId: null, reason: /^incompatible driver: .*CUDA 11\.4/ })
  t.same(dispatched, ['a-holder'], 'no command for the hosts whose driver cannot run it')

  const two = await driver.create({
    images: [CUDA12, PLAIN],
    selector: 'pool=train',
    maxParallelHosts: 1,
    maxFailedHosts: null,
    replaces: [one.id],
  })
  const started = two.hosts.find((h) => h.state === 'running')!
  t.equal(started.hostId, 'a-holder')
  const command = (await store.command(started.commandId!))!
  t.same(command.args, { images: [CUDA12, PLAIN], hold: true, rollout: two.id, replaces: [one.id] })

  await store.recordBatch(
    'a-holder',
    [],
    [result('a-holder', command.commandId, true, { results: [pulled(CUDA12), pulled(PLAIN)] })],
  )
  await driver.wake()
  const after = (await store.rollouts.rollout(two.id))!
  t.match(after.hosts[0], { hostId: 'a-holder', state: 'succeeded', bytesPulled: 200 })
  const next = after.hosts.find((h) => h.state === 'running')!
  t.equal(next.hostId, 'b-old', 'the next host starts when one finishes')
  t.same((await store.command(next.commandId!))!.args.images, [PLAIN], 'asked only for what its driver runs')
  t.match(next.images, [{ ref: CUDA12, status: 'skipped', skip: 'incompatible' }])

  // A coordinator restart: a new store and driver on the same data carry on once the hosts are back.
  await store.close()
  const again = setup(t, dir)
  for (const h of hellos) await again.store.recordHello(h)
  await again.driver.start()
  await again.driver.wake()
  await again.store.recordBatch('b-old', [], [result('b-old', next.commandId!, true, { results: [pulled(PLAIN)] })])
  await again.driver.wake()
  const restarted = (await again.store.rollouts.rollout(two.id))!
  t.match(
    restarted.hosts.find((h) => h.hostId === 'b-old'),
    { state: 'succeeded', bytesPulled: 100 },
  )
  const c = restarted.hosts.find((h) => h.hostId === 'c-old-only')!
  t.equal(c.state, 'running')

  // A host that connects now and matches joins the running rollout.
  await again.store.recordHello(hello('d-late', '12.2'))
  await again.driver.hostConnected('d-late')
  t.match(
    (await again.store.rollouts.rollout(two.id))!.hosts.find((h) => h.hostId === 'd-late'),
    { state: 'pending' },
  )
  await again.store.recordBatch(
    'c-old-only',
    [],
    [result('c-old-only', c.commandId!, false, undefined, 'the agent stopped')],
  )
  await again.driver.wake()
  const late = (await again.store.rollouts.rollout(two.id))!.hosts.find((h) => h.hostId === 'd-late')!
  t.equal(late.state, 'running')
  await again.store.recordBatch(
    'd-late',
    [],
    [result('d-late', late.commandId!, true, { results: [pulled(CUDA12), pulled(PLAIN)] })],
  )
  await again.driver.wake()
  const done = (await again.store.rollouts.rollout(two.id))!
  t.equal(done.state, 'failed', 'one host failed')
  t.match(
    done.hosts.find((h) => h.hostId === 'c-old-only'),
    { state: 'failed', reason: /command failed: the agent stopped/ },
  )
  const finishedIds = (await again.store.events({ type: 'rollout.finished', limit: 10 })).map((e) => e.data.rolloutId)
  t.same(finishedIds, [two.id], 'the first rollout still waits for its running host')
  await again.driver.stop()
})

// The rollout driver naming peers, over a real fleet store (SQLite in a temp dir): the first host
// reads the registry, the others wait for it to hold the image and then fetch from it with a grant
// it can check, each source serving at most its maxUploads; registry turns per rack with an
// affinity label; no peers when the rollout says so; and a new store and driver on the same data
// plan the same from what is stored.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { hostToken, type AgentAuthPolicy } from '../../src/coordinator/identity.js'
import { acceptPeerAdvert } from '../../src/coordinator/peer-advert.js'
import { grantPeer } from '../../src/coordinator/peer-grants.js'
import type { RolloutSpec } from '../../src/coordinator/rollouts/plan.js'
import { RolloutDriver } from '../../src/coordinator/rollouts/driver.js'
import { SqliteFleetStore } from '../../src/coordinator/store/sqlite/fleet-store.js'
import { verifyPeerToken } from '../../src/peers/token.js'
import type { Hello, SnapshotMessage } from '../../src/protocol.js'
import { commandResult, hello as fleetHello } from '../support/fleet-messages.js'

const REF = 'reg.local/team/model:1'
const ID = 'sha256:' + 'ab'.repeat(32)
const SECRET = 'fleet-secret'

const hello = (hostId: string, labels: Record<string, string>, serves: boolean): Hello =>
  fleetHello(hostId, {
    actions: ['prewarm'],
    facts: serves ? { peers: { url: `http://${hostId}:9479`, maxUploads: 1 } } : {},
    labels,
  })

/** the same image named by its manifest digest too: only then does a host's holding it mean this content */
const DIGEST = 'sha256:' + 'ef'.repeat(32)
const DREF = `${REF}@${DIGEST}`

const REF2 = 'reg.local/team/tokenizer:1'
const ID2 = 'sha256:' + 'cd'.repeat(32)

/** the host reports it holds the images (its images after the pull) */
const holds = (hostId: string): SnapshotMessage => ({
  v: 1,
  id: `s-${hostId}`,
  ts: '2026-11-23T10:00:01.000Z',
  hostId,
  type: 'snapshot',
  gpu: {},
  disk: null,
  images: null,
  localImages: [
    {
      id: ID,
      repoTags: [REF],
      repoDigests: [`reg.local/team/model@${DIGEST}`],
      sizeBytes: 1,
      cudaEnv: null,
      compat: null,
    },
    { id: ID2, repoTags: [REF2], repoDigests: [], sizeBytes: 1, cudaEnv: null, compat: null },
  ],
  lastPrune: null,
  lastPrewarm: null,
})

const spec = (over: Partial<RolloutSpec> = {}): RolloutSpec => ({
  images: [REF],
  selector: '',
  maxParallelHosts: 10,
  maxFailedHosts: null,
  replaces: [],
  ...over,
})

function setup(
  t: { teardown(fn: () => void | Promise<void>): void },
  dir?: string,
  policy: AgentAuthPolicy = { mode: 'per-host', secret: SECRET, sharedToken: null },
) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'gh-rollout-peers-'))
  if (!dir) t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const store = new SqliteFleetStore(dataDir)
  const driver = new RolloutDriver({
    store,
    evaluator: null,
    log: pino({ level: 'silent' }),
    tickSeconds: 3600,
    grantPeer: (g) => grantPeer(policy, g, Math.floor(Date.now() / 1000), 3600),
  })
  t.teardown(() => store.close())
  return { store, driver, dataDir }
}

type Store = SqliteFleetStore

/** host id → 'registry' | 'held' | 'peers <first>,<fallbacks>' of the running hosts' commands; pending hosts absent */
async function sources(store: Store, id: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const h of (await store.rollouts.rollout(id))!.hosts) {
    if (h.state !== 'running') continue
    const peers = (await store.command(h.commandId!))!.args.peers as Record<string, { host: string }[]> | undefined
    out[h.hostId] = peers
      ? Object.values(peers)
          .map((list) => (list.length ? `peers ${list.map((p) => p.host).join(',')}` : 'held'))
          .join(' + ')
      : 'registry'
  }
  return out
}

/** the host's prewarm reports its images pulled from `kind` (or present); with `reported`, its images show them too */
async function finish(
  store: Store,
  driver: RolloutDriver,
  id: string,
  hostId: string,
  kind: string,
  reported = true,
  extra: Record<string, unknown> = {},
) {
  const h = (await store.rollouts.rollout(id))!.hosts.find((x) => x.hostId === hostId)!
  const images = (await store.command(h.commandId!))!.args.images as string[]
  const results = images.map((ref) => ({
    ref,
    status: kind === 'present' ? 'present' : 'pulled',
    reason: 'r',
    source: null,
    durationSeconds: 1,
    bytesPulled: kind === 'present' ? 0 : 100,
    ...(kind === 'present' ? {} : { sourceKind: kind }),
    ...extra,
  }))
  await store.recordBatch(hostId, [], [commandResult(hostId, h.commandId!, true, { results })])
  if (reported) await store.recordSnapshot(holds(hostId))
  await driver.wake()
}

t.test('the first host reads the registry, the others fetch from hosts that hold the image', async (t) => {
  const { store, driver, dataDir } = setup(t)
  for (const h of ['s1', 's2', 's3', 's4']) await store.recordHello(hello(h, {}, true))
  await store.recordHello(hello('f5', {}, false))
  const r = await driver.create(spec())
  t.same(await sources(store, r.id), { s1: 'registry' }, 'one registry turn; the others wait for s1')

  await finish(store, driver, r.id, 's1', 'registry', false)
  t.same(await sources(store, r.id), {}, 's1 finished but has not reported the image yet: nobody starts')
  await store.recordSnapshot(holds('s1'))
  await driver.imagesReported()
  t.same(await sources(store, r.id), { s2: 'peers s1' }, 's1 serves one at a time; a host that serves goes first')

  const running = (await store.rollouts.rollout(r.id))!.hosts.find((h) => h.hostId === 's2')!
  const cmd = (await store.command(running.commandId!))!
  const grant = (cmd.args.peers as Record<string, { host: string; url: string; token: string }[]>)[REF][0]
  t.equal(grant.url, `http://s1:9479/v1/images/${ID}/export`, 'the export URL of the image id s1 reported')
  const verdict = verifyPeerToken(grant.token, { hostId: 's1', token: hostToken(SECRET, 's1') }, Date.now() / 1000)
  t.match(verdict, { ok: true, claim: { server: 's1', fetcher: 's2', ref: REF } }, 's1 accepts the grant')
  t.match(cmd.args, { images: [REF], hold: true, rollout: r.id }, 'the rest of the command as without peers')

  // A coordinator restart: the same plan from what is stored; s1's one slot is still taken by s2.
  await store.close()
  const again = setup(t, dataDir)
  for (const h of ['s1', 's2', 's3', 's4']) await again.store.recordHello(hello(h, {}, true))
  await again.store.recordHello(hello('f5', {}, false))
  await again.driver.wake()
  t.same(await sources(again.store, r.id), { s2: 'peers s1' }, 'nothing more starts after a restart')

  await finish(again.store, again.driver, r.id, 's2', 'peer')
  t.same(
    await sources(again.store, r.id),
    { s3: 'peers s1,s2', s4: 'peers s2,s1' },
    'each source one at a time, the others named as fallbacks',
  )
  await finish(again.store, again.driver, r.id, 's3', 'peer')
  t.same(await sources(again.store, r.id), { s4: 'peers s2,s1', f5: 'peers s1,s3,s2' }, 'a host that only fetches')
  await finish(again.store, again.driver, r.id, 's4', 'peer')
  await finish(again.store, again.driver, r.id, 'f5', 'peer')
  const done = (await again.store.rollouts.rollout(r.id))!
  t.equal(done.state, 'succeeded')
})

t.test('with an affinity label the registry is read once per rack', async (t) => {
  const { store, driver } = setup(t)
  for (const [h, rack] of [
    ['a1', 'a'],
    ['a2', 'a'],
    ['b1', 'b'],
    ['b2', 'b'],
  ])
    await store.recordHello(hello(h, { rack }, true))
  const r = await driver.create(spec({ peerAffinityLabel: 'rack' }))
  t.same(await sources(store, r.id), { a1: 'registry', b1: 'registry' })
  await finish(store, driver, r.id, 'b1', 'registry')
  t.same(await sources(store, r.id), { a1: 'registry', b2: 'peers b1' }, 'b2 from its own rack')
  await finish(store, driver, r.id, 'a1', 'mirror')
  t.same(await sources(store, r.id), { a2: 'peers a1,b1', b2: 'peers b1' }, 'own rack first, the other as fallback')
})

t.test('no peers: when the rollout says so, or when no host serves', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2', 's3']) await store.recordHello(hello(h, {}, true))
  const off = await driver.create(spec({ peers: false }))
  t.same(await sources(store, off.id), { s1: 'registry', s2: 'registry', s3: 'registry' })

  const other = setup(t)
  for (const h of ['f1', 'f2']) await other.store.recordHello(hello(h, {}, false))
  const none = await other.driver.create(spec())
  t.same(await sources(other.store, none.id), { f1: 'registry', f2: 'registry' }, 'nobody to wait for')
})

t.test('a finished source that never reports the image is passed over after a grace', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec())
  await finish(store, driver, r.id, 's1', 'registry', false)
  t.same(await sources(store, r.id), {}, 's2 waits for s1 to report')
  // As if s1 finished long ago: its facts never showed the image (a list too large to send, say).
  const hosts = (await store.rollouts.rollout(r.id))!.hosts
  const changes = { expect: 'running' as const, finish: null, events: [] }
  const patch = { finishedAt: new Date(Date.now() - 10 * 60_000).toISOString() }
  await store.rollouts.applyRolloutChanges(r.id, { ...changes, hosts: [{ hostId: hosts[0].hostId, patch }] })
  await driver.wake()
  t.same(await sources(store, r.id), { s2: 'registry' }, 's2 reads the registry instead of waiting forever')
})

t.test('two images from a source with one slot: the host is started, never left waiting for itself', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2', 's3']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec({ images: [REF, REF2] }))
  t.same(await sources(store, r.id), { s1: 'registry' })
  await finish(store, driver, r.id, 's1', 'registry')
  t.same(await sources(store, r.id), { s2: 'peers s1 + peers s1' }, 'both images from s1')
  await finish(store, driver, r.id, 's2', 'peer')
  t.same(await sources(store, r.id), { s3: 'peers s1,s2 + peers s2,s1' }, 'one image from each source')
  await finish(store, driver, r.id, 's3', 'peer')
  const done = (await store.rollouts.rollout(r.id))!
  t.equal(done.state, 'succeeded')
  t.same(
    done.hosts.map((h) => h.images.map((i) => i.sourceKind)),
    [
      ['registry', 'registry'],
      ['peer', 'peer'],
      ['peer', 'peer'],
    ],
  )
})

/** the host reports one image under these names */
const reports = (hostId: string, repoTags: string[], repoDigests: string[]): SnapshotMessage => ({
  ...holds(hostId),
  localImages: [{ id: ID, repoTags, repoDigests, sizeBytes: 1, cudaEnv: null, compat: null }],
})

t.test('an image named by tag and digest: a source by its repository digest, a peer-loaded host is none', async (t) => {
  const digest = 'sha256:' + 'ef'.repeat(32)
  const byDigest = `reg.local/team/model:1@${digest}`
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2', 's3', 's4']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec({ images: [byDigest] }))
  t.same(await sources(store, r.id), { s1: 'registry' })
  await finish(store, driver, r.id, 's1', 'registry', false)
  await store.recordSnapshot(reports('s1', ['reg.local/team/model:1'], [`reg.local/team/model@${digest}`]))
  await driver.imagesReported()
  t.same(await sources(store, r.id), { s2: 'peers s1' }, 's1 holds it under the repository digest')
  await finish(store, driver, r.id, 's2', 'peer', false)
  // Loaded from a peer's archive: the tag is put back, no repository digest comes with it.
  await store.recordSnapshot(reports('s2', ['reg.local/team/model:1'], []))
  await driver.imagesReported()
  t.same(await sources(store, r.id), { s3: 'peers s1' }, 's2 cannot serve it by digest: not named, not waited for')
})

t.test('racks start side by side: a host waiting for its rack gives its slot to the next rack', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['a1', 'a2', 'a3', 'b1', 'b2', 'b3']) await store.recordHello(hello(h, { rack: h[0] }, true))
  const r = await driver.create(spec({ peerAffinityLabel: 'rack', maxParallelHosts: 2 }))
  t.same(await sources(store, r.id), { a1: 'registry', b1: 'registry' }, 'one registry turn per rack at once')
  await finish(store, driver, r.id, 'b1', 'registry')
  t.same(await sources(store, r.id), { a1: 'registry', b2: 'peers b1' }, 'b2 before a2 and a3, which wait for a1')
})

t.test('a host that holds the image by digest starts at once, with no registry turn and no peer', async (t) => {
  const { store, driver } = setup(t)
  await store.recordHello(hello('h0', {}, true))
  await store.recordSnapshot(holds('h0'))
  for (const h of ['s1', 's2']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec({ images: [DREF] }))
  t.same(await sources(store, r.id), { h0: 'held', s1: 'registry' }, 'h0 named no peers; s1 has the turn')
  await store.recordHello(hello('s3', {}, true))
  await driver.hostConnected('s3')
  t.same(await sources(store, r.id), { h0: 'held', s1: 'registry' }, 's3 waits for s1 or h0')
  // s1's pull is done and its images show it before its result arrives: its registry turn stays taken.
  await store.recordSnapshot(holds('s1'))
  await driver.imagesReported()
  t.same(await sources(store, r.id), { h0: 'held', s1: 'registry' }, 's2 and s3 still wait')
  await finish(store, driver, r.id, 'h0', 'present')
  t.same(await sources(store, r.id), { s1: 'registry', s2: 'peers h0' }, 'h0 serves one at a time')
})

t.test("a source's slots count every rollout's fetches, and only connected fetchers'", async (t) => {
  const { store, driver } = setup(t)
  await store.recordHello(hello('s1', { team: 'a', b: 'yes' }, true))
  await store.recordHello(hello('s2', { team: 'a' }, true))
  for (const h of ['s3', 's4']) await store.recordHello(hello(h, { b: 'yes' }, true))
  const a = await driver.create(spec({ selector: 'team=a', images: [DREF] }))
  await finish(store, driver, a.id, 's1', 'registry')
  t.same(await sources(store, a.id), { s2: 'peers s1' }, "s2 takes s1's one slot")
  const b = await driver.create(spec({ selector: 'b=yes', images: [DREF] }))
  t.same(await sources(store, b.id), { s1: 'held', s3: 'registry' }, 's1 holds it: no peers, no turn')
  await finish(store, driver, b.id, 's1', 'present')
  t.same(await sources(store, b.id), { s3: 'registry' }, "s4 waits: s1's slot serves rollout a's s2")
  // s2 drops off: its fetch is cut, so the slot is free again.
  await store.recordDisconnect('s2')
  await driver.wake()
  t.same(await sources(store, b.id), { s3: 'registry', s4: 'peers s1' }, 's4 takes the slot s2 no longer uses')
})

t.test('a host holding a tag takes a registry turn: the tag may have moved since', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['h0', 'h1']) {
    await store.recordHello(hello(h, {}, true))
    await store.recordSnapshot(holds(h))
  }
  const r = await driver.create(spec())
  t.same(await sources(store, r.id), { h0: 'registry' }, 'h1 waits for a turn or a source like any host')
})

t.test('a source reported failing twice is not named again in the rollout', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2', 's3', 's4', 's5']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec())
  await finish(store, driver, r.id, 's1', 'registry')
  t.same(await sources(store, r.id), { s2: 'peers s1' })
  const failedS1 = { peerFailures: [{ host: 's1', reason: 'peer answered 500' }] }
  await finish(store, driver, r.id, 's2', 'registry', true, failedS1)
  t.same(await sources(store, r.id), { s3: 'peers s1,s2', s4: 'peers s2,s1' }, 'one failure: s1 still named')
  await finish(store, driver, r.id, 's3', 'peer', true, failedS1)
  t.same(await sources(store, r.id), { s4: 'peers s2,s1', s5: 'peers s3,s2' }, 's1 failed twice: left out')
  const stored = (await store.rollouts.rollout(r.id))!.hosts.find((h) => h.hostId === 's3')!
  t.same(stored.images[0].peerFailures, ['s1'], 'the failures are stored with the outcome')
})

t.test('a source whose archive named images on a fetcher is left out at once', async (t) => {
  const { store, driver } = setup(t)
  for (const h of ['s1', 's2', 's3', 's4']) await store.recordHello(hello(h, {}, true))
  const r = await driver.create(spec())
  await finish(store, driver, r.id, 's1', 'registry')
  t.same(await sources(store, r.id), { s2: 'peers s1' })
  const breachedS1 = {
    peerFailures: [{ host: 's1', reason: 'peer s1 sent an archive that named images on this host', breach: true }],
  }
  await finish(store, driver, r.id, 's2', 'registry', true, breachedS1)
  t.same(await sources(store, r.id), { s3: 'peers s2' }, 'one breach: s1 is named no more, not even as a fallback')
  const stored = (await store.rollouts.rollout(r.id))!.hosts.find((h) => h.hostId === 's2')!
  t.same(stored.images[0].peerBreaches, ['s1'], 'the breach is stored with the outcome')
  t.same(stored.images[0].peerFailures, ['s1'], 'and counted as a failure')
})

t.test('a grant is signed with the credential the serving host connected with', async (t) => {
  // Shared mode with a secret: a host may connect with the shared token or with its own.
  const { store, driver } = setup(t, undefined, { mode: 'shared', secret: SECRET, sharedToken: 'shared-token' })
  const connect = async (hostId: string, sharedCredential: boolean) => {
    const h = hello(hostId, {}, true)
    const { peers } = acceptPeerAdvert(h.facts.peers, { remoteAddress: '127.0.0.1', sharedCredential })
    await store.recordHello({ ...h, facts: { peers: peers! } })
  }
  await connect('s1', false)
  await connect('s2', true)
  await connect('s3', false)
  const r = await driver.create(spec())
  await finish(store, driver, r.id, 's1', 'registry')
  await finish(store, driver, r.id, 's2', 'peer')
  t.same(await sources(store, r.id), { s3: 'peers s1,s2' })
  const s3 = (await store.rollouts.rollout(r.id))!.hosts.find((h) => h.hostId === 's3')!
  const [fromS1, fromS2] = ((await store.command(s3.commandId!))!.args.peers as Record<string, { token: string }[]>)[
    REF
  ]
  const now = Date.now() / 1000
  t.match(verifyPeerToken(fromS1.token, { hostId: 's1', token: hostToken(SECRET, 's1') }, now), { ok: true }, 's1: own')
  t.match(verifyPeerToken(fromS2.token, { hostId: 's2', token: 'shared-token' }, now), { ok: true }, 's2: shared')
})

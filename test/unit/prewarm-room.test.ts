// Making room through the prune action: a dry run first, a real prune only when it can free enough.
import t from 'tap'
import { ActionRegistry, type ActionMap } from '../../src/core/actions.js'
import type { PruneArgs } from '../../src/prune/request.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { makeRoom } from '../../src/prewarm/make-room.js'
import { planPrewarm } from '../../src/prewarm/plan.js'
import type { DiskFacts } from '../../src/core/snapshot.js'
import type { RemoteImage } from '../../src/registry/types.js'

const MiB = 1024 * 1024
const config = parseConfig(agentConfigSchema, {})
const log = createLogger({ level: 'silent', toStderr: true })
const disk: DiskFacts = {
  path: '/d',
  mountpoint: '/d',
  sizeBytes: 1000 * MiB,
  usedBytes: 840 * MiB,
  availBytes: 160 * MiB,
  usedPercent: 84,
}
const remote = (ref: string, compressedMiB: number): RemoteImage => ({
  ref,
  registry: 'docker.io',
  repository: `library/${ref.split(':')[0]}`,
  digest: `sha256:${'a'.repeat(64)}`,
  env: [],
  labels: {},
  compressedBytes: compressedMiB * MiB,
})
const plan = planPrewarm({
  wanted: ['a:1', 'b:1'],
  local: [],
  disk,
  highPercent: 85,
  expansionFactor: 2.5,
  compat: () => ({ compatible: null, reason: '', requirement: null }),
  remote: new Map([
    ['a:1', remote('a:1', 2)],
    ['b:1', remote('b:1', 20)],
  ]), // 5 MiB fits, 50 MiB does not
})

/** a prune action that can free `freeable` bytes and records how it was called */
function pruneAction(freeable: number, sizeBytes = freeable) {
  const calls: PruneArgs[] = []
  const actions = new ActionRegistry()
  actions.register('prune', async (raw) => {
    const args = raw as PruneArgs
    calls.push(args)
    // Only the fields makeRoom reads: the plan's sizes, enough and freedBytes.
    const report = args.dryRun
      ? { plan: [{ sizeBytes, expectedFreedBytes: freeable }], enough: false }
      : { freedBytes: freeable }
    return report as unknown as ActionMap['prune']['result']
  })
  return { actions, calls }
}

t.test('the plan needs room', async (t) => {
  t.same(
    plan.items.map((i) => i.action),
    ['pull', 'skip'],
  )
})

t.test('no prune action: says so, removes nothing', async (t) => {
  const room = await makeRoom({ actions: new ActionRegistry(), log, config }, plan, { disk }, 'cli', false)
  t.same(room, { attempted: false, freedBytes: 0, note: 'no prune job on this host to make room' })
})

t.test('a prune that can free enough runs, with a target that fits every pull', async (t) => {
  const { actions, calls } = pruneAction(100 * MiB)
  const room = await makeRoom({ actions, log, config }, plan, { disk }, 'schedule', false)
  t.equal(calls.length, 2)
  t.equal(calls[0].dryRun, true, 'a dry run first')
  t.equal(calls[1].dryRun, false)
  // 850 MiB is the watermark; 55 MiB of pulls: usage must come down to 795 MiB = 79.5 %.
  t.equal(Math.round((calls[1].targetPercent as number) * 10) / 10, 79.5)
  t.equal(room.freedBytes, 100 * MiB)
  const after = planPrewarm({
    wanted: ['a:1', 'b:1'],
    local: [],
    disk: { ...disk, usedBytes: 740 * MiB, availBytes: 260 * MiB },
    highPercent: 85,
    expansionFactor: 2.5,
    compat: () => ({ compatible: null, reason: '', requirement: null }),
    remote: new Map([
      ['a:1', remote('a:1', 2)],
      ['b:1', remote('b:1', 20)],
    ]),
    prune: room,
  })
  t.same(
    after.items.map((i) => i.action),
    ['pull', 'pull'],
  )
  t.match(after.items[1].reason, /a prune freed 100\.0 MiB first to make room/)
})

t.test('a prune that cannot free enough is not run', async (t) => {
  const { actions, calls } = pruneAction(10 * MiB)
  const room = await makeRoom({ actions, log, config }, plan, { disk }, 'cli', false)
  t.equal(calls.length, 1, 'only the dry run')
  t.match(room.note, /a prune could free only 10\.0 MiB of the 45\.0 MiB needed, so none was run/)
})

t.test('images whose layers other images keep do not count as room', async (t) => {
  // 500 MiB of images in the plan, but only 10 MiB that their removal frees for sure
  const { actions, calls } = pruneAction(10 * MiB, 500 * MiB)
  const room = await makeRoom({ actions, log, config }, plan, { disk }, 'cli', false)
  t.equal(calls.length, 1, 'only the dry run: no prune that would empty the host in vain')
  t.match(room.note, /could free only 10\.0 MiB/)
})

t.test('a dry-run prewarm only asks', async (t) => {
  const { actions, calls } = pruneAction(100 * MiB)
  const room = await makeRoom({ actions, log, config }, plan, { disk }, 'cli', true)
  t.equal(calls.length, 1)
  t.match(room.note, /a prune would free 100\.0 MiB first to make room/)
})

t.test('a failing prune is reported, not thrown', async (t) => {
  const actions = new ActionRegistry()
  actions.register('prune', async () => {
    throw new Error('Docker is unreachable')
  })
  const room = await makeRoom({ actions, log, config }, plan, { disk }, 'cli', false)
  t.match(room.note, /the prune job could not make room: Docker is unreachable/)
})

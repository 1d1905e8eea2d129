import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Outbox } from '../../src/link/outbox.js'

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-outbox-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

const entry = (id: string, type = 'prune.finished', kind: 'event' | 'command.result' = 'event') => ({
  id,
  kind,
  type,
  message: JSON.stringify({ id, type }),
})

t.test('entries come back in the order written; acks remove them in any order', async (t) => {
  const box = new Outbox(join(dir(t), 'outbox.db'), { maxEntries: 100 })
  t.teardown(() => box.close())
  for (let i = 1; i <= 5; i++) box.add(entry(`e${i}`))
  t.same(
    box.entriesAfter(0, 10).map((e) => e.id),
    ['e1', 'e2', 'e3', 'e4', 'e5'],
  )
  const second = box.entriesAfter(0, 2)
  t.same(
    box.entriesAfter(second[1].seq, 10).map((e) => e.id),
    ['e3', 'e4', 'e5'],
    'paging by seq',
  )
  t.equal(box.remove(['e4', 'e2', 'unknown']), 2)
  t.same(
    box.entriesAfter(0, 10).map((e) => e.id),
    ['e1', 'e3', 'e5'],
  )
  t.equal(box.stats().pending, 3)
  box.add(entry('e1'))
  t.equal(box.stats().pending, 3, 'the same id twice is stored once')
})

t.test('pending entries survive a restart, in order, and new ones follow them', async (t) => {
  const file = join(dir(t), 'outbox.db')
  const first = new Outbox(file, { maxEntries: 100 })
  for (let i = 1; i <= 4; i++) first.add(entry(`e${i}`))
  first.remove(['e1'])
  first.close()
  const again = new Outbox(file, { maxEntries: 100 })
  t.teardown(() => again.close())
  t.equal(again.stats().pending, 3, 'the pending count is read back')
  again.add(entry('e5'))
  t.same(
    again.entriesAfter(0, 10).map((e) => e.id),
    ['e2', 'e3', 'e4', 'e5'],
  )
})

t.test('when full, the oldest progress events go first, then other informational events, never results', async (t) => {
  const drops: [number, string][] = []
  const box = new Outbox(join(dir(t), 'outbox.db'), { maxEntries: 100, onDrop: (n, type) => drops.push([n, type]) })
  t.teardown(() => box.close())
  box.add(entry('r0', 'prune', 'command.result'))
  for (let i = 0; i < 60; i++) box.add(entry(`p${i}`, 'pull.progress'))
  box.add(entry('f0', 'pull.finished'))
  box.add(entry('s0', 'agent.started'))
  for (let i = 0; i < 37; i++) box.add(entry(`x${i}`, 'prune.finished'))
  t.equal(box.stats().pending, 100, 'exactly full')
  box.add(entry('x37', 'prune.finished'))
  box.add(entry('x38', 'prune.finished'))
  const ids = box.entriesAfter(0, 1000).map((e) => e.id)
  t.equal(ids.length, 100, 'stays at the bound')
  t.notOk(ids.includes('p0') || ids.includes('p1'), 'the two oldest progress events went')
  t.ok(ids.includes('p2'), 'newer progress events stay')
  t.equal(ids[0], 'r0', 'the result stays, first in line')
  t.same(box.stats(), { pending: 100, dropped: 2, held: 0 })

  for (let i = 39; i < 139; i++) box.add(entry(`x${i}`, 'prune.finished'))
  const after = box.entriesAfter(0, 1000)
  t.notOk(
    after.some((e) => e.type === 'pull.progress'),
    'every progress event went',
  )
  t.notOk(
    after.some((e) => e.type === 'agent.started'),
    'then the informational ones',
  )
  t.ok(
    after.some((e) => e.id === 'r0'),
    'results never go',
  )
  t.equal(after.length, 100, 'then the oldest other events: the bound holds for every event')
  t.notOk(
    after.some((e) => e.id === 'f0' || e.id === 'x0'),
    'the oldest pull.finished and prune.finished went',
  )
  t.equal(after[after.length - 1].id, 'x138', 'the newest stays')
  t.ok(drops.length > 0 && drops.every(([n]) => n > 0))
  const told = [...new Set(drops.map(([, type]) => type))].sort()
  t.same(told, ['agent.started', 'prune.finished', 'pull.finished', 'pull.progress'], 'drops are told by event type')

  for (let i = 0; i < 120; i++) box.add(entry(`r${i + 1}`, 'prune', 'command.result'))
  const results = box.entriesAfter(0, 1000)
  t.equal(results.filter((e) => e.kind === 'command.result').length, 121, 'every result is kept, over the bound')
  t.equal(results.length, 121)
})

const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })

t.test('entries the database cannot take are held in memory, sent in order, and written when it can', async (t) => {
  const file = join(dir(t), 'outbox.db')
  let diskFull = false
  const errors: string[] = []
  const box = new Outbox(file, {
    maxEntries: 100,
    write: (fn) => {
      if (diskFull) throw full()
      return fn()
    },
    onWriteError: (err) => errors.push(err.message),
  })
  box.add(entry('e1'))
  box.add(entry('e2'))
  diskFull = true
  box.add(entry('e3'))
  box.add(entry('r1', 'prune', 'command.result'))
  t.same(
    box.entriesAfter(0, 10).map((e) => e.id),
    ['e1', 'e2', 'e3', 'r1'],
    'held entries follow the written ones',
  )
  t.same(box.stats(), { pending: 4, dropped: 0, held: 2 })
  t.ok(errors.length > 0, 'the failure is told')
  const seqs = box.entriesAfter(0, 10).map((e) => e.seq)
  t.same(
    box.entriesAfter(seqs[1], 10).map((e) => e.id),
    ['e3', 'r1'],
    'paging by seq reaches held entries',
  )
  t.equal(box.remove(['e1', 'e3']), 2, 'an ack of a written and a held entry')
  t.same(
    box.entriesAfter(0, 10).map((e) => e.id),
    ['e2', 'r1'],
    'acked entries are not sent again meanwhile',
  )
  t.equal(box.stats().pending, 2, 'no phantom entries: pending counts what is really owed')
  t.notOk(box.flush(), 'the disk is still full')
  diskFull = false
  t.ok(box.flush(), 'written once the disk takes it')
  t.same(box.stats(), { pending: 2, dropped: 0, held: 0 })
  box.add(entry('e4'))
  box.close()
  const again = new Outbox(file, { maxEntries: 100 })
  t.teardown(() => again.close())
  t.same(
    again.entriesAfter(0, 10).map((e) => e.id),
    ['e2', 'r1', 'e4'],
    'after a restart: nothing lost, in order',
  )
  t.equal(again.stats().pending, 3)
})

t.test('held entries obey the bound; held results do not', async (t) => {
  const drops: string[] = []
  const box = new Outbox(join(dir(t), 'outbox.db'), {
    maxEntries: 100,
    write: () => {
      throw full()
    },
    onDrop: (n, type) => {
      for (let i = 0; i < n; i++) drops.push(type)
    },
  })
  t.teardown(() => box.close())
  box.add(entry('r0', 'prune', 'command.result'))
  for (let i = 0; i < 150; i++) box.add(entry(`x${i}`, 'prune.finished'))
  const ids = box.entriesAfter(0, 1000).map((e) => e.id)
  t.equal(ids.length, 100)
  t.equal(ids[0], 'r0')
  t.equal(ids[1], 'x51', 'the oldest events went first')
  t.equal(drops.length, 51)
  t.same(box.stats(), { pending: 100, dropped: 51, held: 100 })
})

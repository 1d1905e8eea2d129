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

const entry = (id: string, type = 'prune.finished', kind: 'event' | 'command.result' = 'event') => ({ id, kind, type, message: JSON.stringify({ id, type }) })

t.test('entries come back in the order written; acks remove them in any order', async (t) => {
  const box = new Outbox(join(dir(t), 'outbox.db'), 100)
  t.teardown(() => box.close())
  for (let i = 1; i <= 5; i++) box.add(entry(`e${i}`))
  t.same(box.entriesAfter(0, 10).map((e) => e.id), ['e1', 'e2', 'e3', 'e4', 'e5'])
  const second = box.entriesAfter(0, 2)
  t.same(box.entriesAfter(second[1].seq, 10).map((e) => e.id), ['e3', 'e4', 'e5'], 'paging by seq')
  t.equal(box.remove(['e4', 'e2', 'unknown']), 2)
  t.same(box.entriesAfter(0, 10).map((e) => e.id), ['e1', 'e3', 'e5'])
  t.equal(box.stats().pending, 3)
  box.add(entry('e1'))
  t.equal(box.stats().pending, 3, 'the same id twice is stored once')
})

t.test('pending entries survive a restart, in order, and new ones follow them', async (t) => {
  const file = join(dir(t), 'outbox.db')
  const first = new Outbox(file, 100)
  for (let i = 1; i <= 4; i++) first.add(entry(`e${i}`))
  first.remove(['e1'])
  first.close()
  const again = new Outbox(file, 100)
  t.teardown(() => again.close())
  t.equal(again.stats().pending, 3, 'the pending count is read back')
  again.add(entry('e5'))
  t.same(again.entriesAfter(0, 10).map((e) => e.id), ['e2', 'e3', 'e4', 'e5'])
})

t.test('when full, the oldest progress events go first, then other informational events, never results', async (t) => {
  const drops: [number, string][] = []
  const box = new Outbox(join(dir(t), 'outbox.db'), 100, (n, types) => drops.push([n, types]))
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
  t.same(box.stats(), { pending: 100, dropped: 2 })

  for (let i = 39; i < 139; i++) box.add(entry(`x${i}`, 'prune.finished'))
  const after = box.entriesAfter(0, 1000)
  t.notOk(after.some((e) => e.type === 'pull.progress'), 'every progress event went')
  t.notOk(after.some((e) => e.type === 'agent.started'), 'then the informational ones')
  t.ok(after.some((e) => e.id === 'r0') && after.some((e) => e.id === 'f0'), 'results never go')
  t.equal(after.length, 1 + 1 + 139, 'only results are left, over the bound rather than lost')
  t.ok(drops.length > 0 && drops.every(([n]) => n > 0))
})

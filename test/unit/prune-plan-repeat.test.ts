// What the prune planner keeps between plans (reference forms, glob answers) and its own reading of
// times must never change an answer: the same input planned again, after other globs, or after
// other images, gives the same plan; a time reads as Date.parse reads it, odd ones included.
import t from 'tap'
import { planPrune } from '../../src/prune/plan.js'
import type { PlanInput } from '../../src/prune/plan-types.js'
import { timeOf } from '../../src/registry/image-names.js'
import { gen, generateCase, NOW } from '../support/generated-images.js'

const clone = (input: PlanInput): PlanInput => structuredClone(input)

t.test('a time reads as Date.parse reads it, or as the fallback where Date.parse cannot', async (t) => {
  const odd = [
    '2026-10-01T10:00:00.123Z',
    '2026-10-01T10:00:00.123456789Z',
    '2026-10-01T10:00:00Z',
    '0050-01-01T00:00:00.000Z',
    '0000-01-01T00:00:00.000Z',
    '2026-02-31T00:00:00.000Z',
    '2026-13-01T00:00:00.000Z',
    '2026-00-10T00:00:00.000Z',
    '2026-01-01T24:00:00.000Z',
    '2026-01-01T23:60:00.000Z',
    '2026-01-01T23:59:60.000Z',
    '2026-1a-01T10:00:00.000Z',
    '2026-10-01 10:00:00.000Z',
    '2026-10-01T10:00:00.000+',
    '2026-10-01T10:00:00,000Z',
    'not a time',
    '',
  ]
  const g = gen(7)
  for (let i = 0; i < 2000; i++) odd.push(new Date(g.int(-62e12, 253e12)).toISOString())
  for (const s of odd) {
    const parsed = Date.parse(s)
    t.equal(timeOf(s, -1), Number.isNaN(parsed) ? -1 : parsed, s)
  }
  t.equal(timeOf(null, 5), 5)
  t.equal(timeOf(undefined, 5), 5)
})

t.test('planning again, after other globs and other images, gives the same plan', async (t) => {
  for (let i = 0; i < 300; i++) {
    const input = generateCase(0xca5e + i, 60)
    const first = planPrune(clone(input))
    // other globs and other images in between fill the kept answers with other entries
    const other = generateCase(0xbeef + i, 60)
    other.policy.protect = ['team/*', '*:nightly', ...input.policy.protect.slice(1)]
    planPrune(other)
    t.same(planPrune(clone(input)), first, `case ${i}`)
    t.same(planPrune(input), first, `case ${i}, the same objects`)
  }
})

t.test('the same references under other globs are judged by those globs', async (t) => {
  const base = generateCase(0x51, 80)
  base.policy.minAgeSeconds = 0
  base.policy.keepPerRepository = 0
  const kept = (protect: string[]) =>
    planPrune({ ...clone(base), policy: { ...base.policy, protect }, now: NOW }).kept.filter((k) =>
      k.reason.startsWith('protected by'),
    )
  const byTeam = kept(['team/*'])
  const byUbuntu = kept(['ubuntu'])
  t.ok(byTeam.length > 0 && byUbuntu.length > 0, 'the case holds images of both')
  t.ok(byTeam.every((k) => k.reason === 'protected by "team/*"'))
  t.ok(byUbuntu.every((k) => k.reason === 'protected by "ubuntu"'))
  t.same(kept(['team/*']), byTeam, 'asked again, the first answers stand')
  t.same(kept([]), [], 'no globs: nothing protected')
})

import t from 'tap'
import { backoffCeiling, backoffDelay } from '../../src/link/backoff.js'

const policy = { baseMs: 500, maxMs: 60_000 }

t.test('the ceiling doubles from the base and stops at the maximum', async (t) => {
  t.same([0, 1, 2, 3, 4].map((n) => backoffCeiling(n, policy)), [500, 1000, 2000, 4000, 8000])
  t.equal(backoffCeiling(7, policy), 60_000)
  t.equal(backoffCeiling(1000, policy), 60_000, 'no overflow on long outages')
  t.equal(backoffCeiling(-3, policy), 500, 'negative attempts count as the first')
})

t.test('the delay is jittered between half the base and the ceiling', async (t) => {
  t.equal(backoffDelay(3, policy, () => 0), 250)
  t.equal(backoffDelay(3, policy, () => 0.999999), 4000)
  t.equal(backoffDelay(3, policy, () => 0.5), 2125)
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
      const d = backoffDelay(attempt, policy, () => r)
      if (d < 250 || d > backoffCeiling(attempt, policy)) t.fail(`attempt ${attempt}, random ${r}: ${d}`)
    }
  }
  const small = { baseMs: 100, maxMs: 100 }
  t.equal(backoffDelay(5, small, () => 0.999999), 100, 'a maximum below the doubled base holds')
})

t.test('jitter spreads a fleet that reconnects at once', async (t) => {
  let seed = 42
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const delays = new Set(Array.from({ length: 1000 }, () => backoffDelay(6, policy, random)))
  t.ok(delays.size > 900, `${delays.size} distinct delays of 1000`)
})

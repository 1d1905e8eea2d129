import t from 'tap'
import { backoffCeiling, backoffDelay } from '../../src/backoff.js'

const policy = { baseMs: 500, maxMs: 60_000 }

t.test('the ceiling doubles from the base and stops at the maximum', async (t) => {
  t.same(
    [0, 1, 2, 3, 4].map((n) => backoffCeiling(n, policy)),
    [500, 1000, 2000, 4000, 8000],
  )
  t.equal(backoffCeiling(7, policy), 60_000)
  t.equal(backoffCeiling(1000, policy), 60_000, 'no overflow on long outages')
  t.equal(backoffCeiling(-3, policy), 500, 'negative attempts count as the first')
})

t.test('the delay is full jitter: anywhere from 0 to the ceiling', async (t) => {
  t.equal(
    backoffDelay(3, policy, () => 0),
    0,
  )
  t.equal(
    backoffDelay(3, policy, () => 0.999999),
    4000,
  )
  t.equal(
    backoffDelay(3, policy, () => 0.5),
    2000,
  )
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
      const d = backoffDelay(attempt, policy, () => r)
      if (d < 0 || d > backoffCeiling(attempt, policy)) t.fail(`attempt ${attempt}, random ${r}: ${d}`)
    }
  }
  const small = { baseMs: 100, maxMs: 100 }
  t.equal(
    backoffDelay(5, small, () => 0.999999),
    100,
    'a maximum below the doubled base holds',
  )
})

t.test('with the real random source the delays fill [0, ceiling] evenly', async (t) => {
  const ceiling = backoffCeiling(4, policy)
  const delays = Array.from({ length: 20_000 }, () => backoffDelay(4, policy))
  t.ok(
    delays.every((d) => d >= 0 && d <= ceiling),
    'every delay within [0, ceiling]',
  )
  t.ok(Math.min(...delays) < ceiling * 0.01, `the lowest delay is near 0: ${Math.min(...delays)}`)
  t.ok(Math.max(...delays) > ceiling * 0.99, `the highest delay is near the ceiling: ${Math.max(...delays)}`)
  const quarters = [0, 0, 0, 0]
  for (const d of delays) quarters[Math.min(3, Math.floor((d / ceiling) * 4))]++
  for (const [i, n] of quarters.entries()) t.ok(n > 4000 && n < 6000, `quarter ${i} of the range holds ${n} of 20000`)
})

t.test('jitter spreads a fleet that reconnects at once', async (t) => {
  let seed = 42
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  const delays = new Set(Array.from({ length: 1000 }, () => backoffDelay(6, policy, random)))
  t.ok(delays.size > 900, `${delays.size} distinct delays of 1000`)
})

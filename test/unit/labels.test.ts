// Host labels and label selectors, as Kubernetes defines them.
import t from 'tap'
import { matchesSelector, parseSelector, labelsSchema } from '../../src/labels.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'

t.test('label keys and values are validated as Kubernetes does', async (t) => {
  t.ok(labelsSchema.safeParse({ rack: 'a', 'gpuhost.example.com/gpu': 'h100', 'zone_1.x': '', a: 'B-2_c.d' }).success)
  for (const bad of [
    { '': 'a' },
    { '-rack': 'a' },
    { 'Example.com/rack': 'a' },
    { '/rack': 'a' },
    { ['k'.repeat(64)]: 'a' },
    { rack: 'a b' },
    { rack: '-a' },
    { rack: 'v'.repeat(64) },
  ])
    t.notOk(labelsSchema.safeParse(bad).success, `refused: ${JSON.stringify(bad).slice(0, 60)}`)
  t.throws(
    () => parseConfig(agentConfigSchema, { labels: { rack: 'a b' } }),
    /labels\.rack: label value "a b" must be empty or 1-63/,
    'the config names the bad label by its path',
  )
  t.same(parseConfig(agentConfigSchema, {}).labels, {}, 'default: no labels')
})

t.test('selectors: equality, inequality, sets, existence', async (t) => {
  const h100a = { rack: 'a', gpu: 'h100' }
  const a100b = { rack: 'b', gpu: 'a100' }
  const bare = {}
  const pick = (selector: string) =>
    Object.entries({ h100a, a100b, bare })
      .filter(([, labels]) => matchesSelector(labels, parseSelector(selector)))
      .map(([name]) => name)
  t.same(pick(''), ['h100a', 'a100b', 'bare'], 'empty: every host')
  t.same(pick('rack=a,gpu=h100'), ['h100a'])
  t.same(pick('rack==b'), ['a100b'])
  t.same(pick('gpu!=h100'), ['a100b', 'bare'], 'a host without the key matches !=')
  t.same(pick('gpu in (h100, a100)'), ['h100a', 'a100b'])
  t.same(pick('gpu notin (h100)'), ['a100b', 'bare'])
  t.same(pick('rack'), ['h100a', 'a100b'])
  t.same(pick('!rack'), ['bare'])
  t.same(pick('rack in (a,b), gpu notin (a100)'), ['h100a'])
  for (const bad of ['rack=a b', 'gpu in (h100', 'gpu in h100)', 'rack=a,,gpu=h100', 'Bad.Prefix/x=1'])
    t.throws(() => parseSelector(bad), { name: 'SelectorError' }, `refused: ${bad}`)
})

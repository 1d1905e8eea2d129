// docs/configuration.md is rendered from the schemas: the checked-in file must be what they render now,
// and every key must say what it does, so a new key without a description fails here.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { agentConfigSchema, coordinatorConfigSchema } from '../../src/config.js'
import {
  configJsonSchema,
  configKeys,
  DOCS_FILE,
  renderConfigReference,
  type JsonSchema,
} from '../../src/config-reference.js'

const SCHEMAS = { agent: agentConfigSchema, coordinator: coordinatorConfigSchema }

t.test('docs/configuration.md is what the schemas render', async (t) => {
  const rendered = renderConfigReference().split('\n')
  const checkedIn = readFileSync(DOCS_FILE, 'utf8').split('\n')
  const at = rendered.findIndex((line, i) => line !== checkedIn[i])
  const first = at === -1 ? Math.min(rendered.length, checkedIn.length) : at
  if (at === -1 && rendered.length === checkedIn.length) t.pass('docs/configuration.md is up to date')
  else
    t.fail('docs/configuration.md is out of date with src/config.ts: run `npm run docs:config` and commit it', {
      line: first + 1,
      rendered: rendered[first],
      checkedIn: checkedIn[first],
    })
})

/** every key below `s` that holds a value rather than keys of its own, with its description */
function leaves(s: JsonSchema, path: string): { path: string; description: string | undefined }[] {
  const below = (s.anyOf ?? [s]).flatMap((a): [JsonSchema, string][] =>
    a.properties ? [[a, '.']] : a.type === 'array' && a.items?.properties ? [[a.items, '[].']] : [],
  )
  if (below.length === 0) return [{ path, description: s.description }]
  return below.flatMap(([object, join]) =>
    Object.entries(object.properties ?? {}).flatMap(([name, child]) => leaves(child, path ? path + join + name : name)),
  )
}

for (const [name, schema] of Object.entries(SCHEMAS)) {
  t.test(`every leaf key of the ${name} schema has a description`, async (t) => {
    const found = leaves(configJsonSchema(schema), '')
    t.ok(found.length > 10, `${found.length} keys found`)
    const missing = found.filter((k) => !k.description?.trim()).map((k) => k.path)
    t.same(missing, [], 'keys without a description: add .describe() to them in src/config.ts')
  })
}

t.test('a few rows of the reference', async (t) => {
  const agent = new Map(configKeys(configJsonSchema(agentConfigSchema)).map((k) => [k.path, k]))
  const coordinator = new Map(configKeys(configJsonSchema(coordinatorConfigSchema)).map((k) => [k.path, k]))
  t.match(agent.get('prune.highPercent'), { type: 'number 0..100', default: '`85`', section: false })
  t.match(agent.get('prune.highPercent')?.description, /100 switches the disk watcher off/)
  t.match(agent.get('peers.allowLoopback'), { type: 'boolean', default: '`false`' })
  t.match(agent.get('http.allowedHosts'), { type: 'list of string (at most 256)', default: '`[]`' })
  t.match(agent.get('peers.tls.caFile'), { type: 'string, or null', default: '`null`' })
  t.match(agent.get('runtime.kind'), { type: 'one of `docker`, `containerd`', default: '`"docker"`' })
  t.match(agent.get('prune.schedules[].cron'), { type: 'string', default: 'required' })
  t.match(agent.get('prune'), { type: 'object', section: true })
  t.equal(agent.get('hostId')?.default, "the machine's hostname", 'not the hostname of the machine that rendered it')
  t.match(coordinator.get('tls'), { type: 'object, or null', default: '`null`', section: true })
  t.match(coordinator.get('store.poolSize'), { type: 'integer 2..100', default: '`10`' })

  const doc = renderConfigReference()
  t.match(doc, /^## Agent$/m)
  t.match(doc, /^## Coordinator$/m)
  t.match(doc, /^### prune$/m)
  t.match(doc, /^\| `prune\.highPercent` +\| number 0\.\.100 +\| `85` +\| a prune starts when/m)
  t.match(doc, /^\| `peers\.allowLoopback` +\| boolean +\| `false` +\|/m)
  t.match(doc, /^\| `http\.allowedHosts` +\| list of string \(at most 256\) +\| `\[\]` +\|/m)
  t.match(doc, /exits 78/)
})

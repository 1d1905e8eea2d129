// The dashboard and the alert rules query gpuhost metrics by name; every name they use must be one
// the agent exports, so a renamed metric cannot silently blank a panel or an alert.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createAgentMetrics } from '../../src/agent/metrics.js'

const ROOT = new URL('../../', import.meta.url)

async function exportedNames(): Promise<Set<string>> {
  const { registry } = createAgentMetrics({
    snapshot: () => ({
      takenAt: '',
      gpu: { available: false, gpus: [] },
      disk: null,
      images: null,
      docker: { reachable: false },
      collectors: {},
    }),
    version: '0.0.0',
  })
  const names = new Set<string>()
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name)
    // prom-client declares type as a numeric enum, but the value at run time is the name
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s)
  }
  return names
}

function usedNames(text: string): string[] {
  return [...new Set(text.match(/\bgpuhost_[a-z_]+/g) ?? [])].filter((n) => !n.startsWith('gpuhost_action'))
}

t.test('the Grafana dashboard queries only exported metrics', async (t) => {
  const names = await exportedNames()
  const dashboard = JSON.parse(readFileSync(new URL('config/grafana/gpuhost-fleet.json', ROOT), 'utf8'))
  const exprs = JSON.stringify(
    dashboard.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((x) => x.expr)),
  )
  const used = usedNames(exprs)
  t.ok(used.length >= 10, `the dashboard uses ${used.length} gpuhost metrics`)
  for (const n of used) t.ok(names.has(n), `${n} is exported`)
})

t.test('the alert rules use only exported metrics', async (t) => {
  const names = await exportedNames()
  const rules = readFileSync(new URL('config/prometheus/gpuhost-rules.yml', ROOT), 'utf8')
  const exprLines = rules
    .split('\n')
    .filter((l) => /^\s+(expr:|predict_linear|and )/.test(l))
    .join('\n')
  const used = usedNames(exprLines)
  t.ok(used.length >= 6, `the rules use ${used.length} gpuhost metrics`)
  for (const n of used) t.ok(names.has(n), `${n} is exported`)
})

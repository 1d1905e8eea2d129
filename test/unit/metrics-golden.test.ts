// The whole /metrics text for a fixed snapshot and a few events, against a golden file: any change
// to a name, label, help text or value shows up as a diff. Regenerate deliberately with
// GPUHOST_UPDATE_GOLDEN=1 and review the diff. `promtool check metrics` lints the same text.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import type { HostSnapshot } from '../../src/agent/snapshot.js'
import type { AgentEvent } from '../../src/agent/events.js'
import { integrationRequired, which } from '../harness/services.js'

const fixtures = new URL('../fixtures/metrics/', import.meta.url)
const GOLDEN = fileURLToPath(new URL('golden.prom', fixtures))
const snapshot: HostSnapshot = JSON.parse(readFileSync(new URL('snapshot.json', fixtures), 'utf8'))

async function render(): Promise<string> {
  const metrics = createAgentMetrics({ snapshot: () => snapshot, link: () => ({ connected: true, pending: 3 }), version: '1.2.3' }, { processMetrics: false })
  const event = (type: AgentEvent['type'], data: Record<string, unknown>): AgentEvent => ({ id: type, type, ts: snapshot.takenAt, data })
  metrics.onEvent(event('prune.finished', { trigger: 'threshold', result: 'enough', dryRun: false, freedBytes: 10737418240, removedCount: 3 }))
  metrics.onEvent(event('prune.finished', { trigger: 'cli', dryRun: true }))
  metrics.onEvent(event('pull.finished', { status: 'pulled', durationSeconds: 42 }))
  metrics.onEvent(event('pull.finished', { status: 'present' }))
  metrics.onEvent(event('pull.failed', { status: 'failed' }))
  return metrics.registry.metrics()
}

t.test('/metrics matches the golden file', async (t) => {
  const text = await render()
  if (process.env.GPUHOST_UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text)
  t.equal(text, readFileSync(GOLDEN, 'utf8'))
})

// In CI a missing promtool fails the first test; elsewhere both are skipped with the reason.
const noPromtool = which('promtool') ? false : 'promtool is missing (Debian package prometheus)'

t.test('promtool check metrics accepts it', { skip: integrationRequired() ? false : noPromtool }, async (t) => {
  if (noPromtool) return t.fail(noPromtool)
  const r = spawnSync('promtool', ['check', 'metrics'], { input: await render(), encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal((r.stdout + r.stderr).trim(), '', 'no lint findings')
})

t.test('promtool accepts the process metrics too', { skip: noPromtool }, async (t) => {
  const metrics = createAgentMetrics({ snapshot: () => snapshot, version: '1.2.3' })
  const r = spawnSync('promtool', ['check', 'metrics'], { input: await metrics.registry.metrics(), encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout + r.stderr)
})

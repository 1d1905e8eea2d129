// The whole /metrics text for a fixed snapshot and a few events, against a golden file: any change
// to a name, label, help text or value shows up as a diff. Regenerate deliberately with
// GPUHOST_UPDATE_GOLDEN=1 and review the diff. `promtool check metrics` lints the same text.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import type { HostSnapshot } from '../../src/core/snapshot.js'
import type { AgentEvent, EventMap, EventType } from '../../src/core/events.js'
import { eventPayloadSchemas } from '../../src/protocol-events.js'
import { integrationRequired, which } from '../harness/services.js'
import { PeerServeStats } from '../../src/peers/metrics.js'

const fixtures = new URL('../fixtures/metrics/', import.meta.url)
const GOLDEN = fileURLToPath(new URL('golden.prom', fixtures))
const snapshot: HostSnapshot = JSON.parse(readFileSync(new URL('snapshot.json', fixtures), 'utf8'))

async function render(): Promise<string> {
  // a serving host mid-way: one upload streaming, two done, one cut, some requests turned away
  const peers = new PeerServeStats()
  Object.assign(peers, { bytesServed: 3221225472, uploadsInFlight: 1 })
  Object.assign(peers.uploads, { complete: 2, cut: 1 })
  Object.assign(peers.refused, { unauthorized: 4, forbidden: 1, busy: 3 })
  const metrics = createAgentMetrics(
    {
      snapshot: () => snapshot,
      version: '1.2.3',
      link: () => ({ connected: true, pending: 3, dropped: { 'pull.progress': 5 } }),
      stateWriteErrors: () => ({ outbox: 2, usage: 0 }),
      // two present in the snapshot (one named in its docker.io form), one missing, two skipped
      wanted: () => [
        'nvcr.io/nvidia/pytorch:23.10-py3',
        'docker.io/tensorflow/tensorflow:2.13.0-gpu',
        'team/missing:1',
        'team/cuda-next:2',
        'team/huge:1',
      ],
      peers: () => peers,
    },
    { processMetrics: false },
  )
  // Payloads the agent really publishes, checked against the event schemas, so no label value
  // appears here that the agent cannot emit.
  const event = <K extends EventType>(type: K, data: EventMap[K]): AgentEvent =>
    ({ id: type, type, ts: snapshot.takenAt, data: eventPayloadSchemas[type].parse(data) }) as AgentEvent
  const prune = {
    dryRun: false,
    targetPercent: 80,
    needBytes: 10737418240,
    enough: true,
    plannedCount: 3,
    skippedCount: 0,
    failedCount: 0,
    keptCount: 2,
    usedPercentBefore: 91.5,
    usedPercentAfter: 79.2,
    durationSeconds: 12,
  }
  metrics.onEvent(
    event('prune.finished', {
      ...prune,
      trigger: 'watcher',
      result: 'ok',
      freedBytes: 10737418240,
      removedCount: 3,
      freedBytesByKind: { containers: 1073741824, images: 9663676416, buildCache: 0, volumes: 0 },
    }),
  )
  metrics.onEvent(
    event('prune.finished', {
      ...prune,
      trigger: 'cli',
      dryRun: true,
      result: 'ok',
      freedBytes: 0,
      removedCount: 0,
      usedPercentAfter: 91.5,
    }),
  )
  const pull = { ref: 'nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04', reason: 'wanted', source: 'nvcr.io' }
  metrics.onEvent(event('pull.finished', { ...pull, status: 'pulled', durationSeconds: 42 }))
  metrics.onEvent(event('pull.finished', { ...pull, status: 'present', durationSeconds: 0 }))
  metrics.onEvent(
    event('pull.failed', {
      ...pull,
      status: 'failed',
      reason: 'pull failed from nvcr.io: timeout',
      durationSeconds: 600,
    }),
  )
  const skipped = { source: 'registry.example', status: 'skipped' as const, durationSeconds: 0 }
  metrics.onEvent(
    event('pull.finished', {
      ...skipped,
      ref: 'team/cuda-next:2',
      reason: "the host's driver cannot run it",
      skip: 'incompatible',
    }),
  )
  metrics.onEvent(
    event('pull.finished', { ...skipped, ref: 'team/huge:1', reason: 'the disk would reach 91%', skip: 'disk' }),
  )
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

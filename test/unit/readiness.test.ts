// /readyz and the failing parts `gpuhost status` lists, from snapshots as the agent holds them; and
// the hint for an unreachable runtime, on the errors Docker's and containerd's clients give.
import t from 'tap'
import { failingParts, readiness } from '../../src/agent/readiness.js'
import { SnapshotStore, type HostSnapshot } from '../../src/core/snapshot.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { runtimeUnreachableHint } from '../../src/runtime/unreachable-hint.js'

function snapshot(docker: HostSnapshot['docker'], collectors: HostSnapshot['collectors']): HostSnapshot {
  const store = new SnapshotStore([])
  store.set('docker', docker)
  for (const [name, c] of Object.entries(collectors)) store.recordCollector(name, c)
  return store.get()
}
const at = '2026-12-04T12:00:00.000Z'
const ok = { success: true, durationSeconds: 0.01, at }
const retrying = { component: 'coordinator-link', error: 'ECONNREFUSED', attempts: 3, retryAt: at }

t.test('starting, then ready while the runtime answers, unready while it does not', async (t) => {
  const up = snapshot({ reachable: true, kind: 'docker', version: '27.5.1' }, { images: ok, disk: ok })
  t.same(readiness({ snapshotTaken: false, snapshot: up, failing: [] }), {
    status: 503,
    body: { status: 'starting', waitingFor: 'first snapshot' },
  })
  t.same(readiness({ snapshotTaken: true, snapshot: up, failing: [] }), { status: 200, body: { status: 'ready' } })

  const noGpu = snapshot(
    { reachable: true, kind: 'docker' },
    { images: ok, gpu: { success: false, durationSeconds: 0, at, error: 'nvidia-smi not found', failures: 4 } },
  )
  const parts = failingParts(noGpu, [retrying])
  t.same(parts, [retrying, { component: 'collector:gpu', error: 'nvidia-smi not found', attempts: 4 }])
  t.same(
    readiness({ snapshotTaken: true, snapshot: noGpu, failing: parts }),
    {
      status: 200,
      body: {
        status: 'ready',
        failing: [
          { component: 'coordinator-link', error: 'ECONNREFUSED' },
          { component: 'collector:gpu', error: 'nvidia-smi not found' },
        ],
      },
    },
    'a part other than the runtime failing is listed, and the agent is ready',
  )

  const down = snapshot(
    {
      reachable: false,
      kind: 'containerd',
      reason: 'connect ENOENT /run/containerd/containerd.sock',
      hint: 'start it',
    },
    { images: { success: false, durationSeconds: 0, at, error: 'containerd is unreachable' } },
  )
  t.same(readiness({ snapshotTaken: true, snapshot: down, failing: failingParts(down, []) }), {
    status: 503,
    body: {
      status: 'unready',
      reason: 'containerd is unreachable: connect ENOENT /run/containerd/containerd.sock',
      hint: 'start it',
      failing: [{ component: 'collector:images', error: 'containerd is unreachable' }],
    },
  })
})

t.test('runtimeUnreachableHint names what to start, set or install', async (t) => {
  const docker = parseConfig(agentConfigSchema, { docker: { socket: '/var/run/docker.sock' } })
  const containerd = parseConfig(agentConfigSchema, { runtime: { kind: 'containerd' } })
  t.equal(
    runtimeUnreachableHint(docker, 'Docker is unreachable: connect ENOENT /var/run/docker.sock'),
    'no socket at /var/run/docker.sock: start Docker, or set docker.socket to where it listens ' +
      '(runtime.kind: containerd on a containerd or Kubernetes host)',
  )
  t.match(
    runtimeUnreachableHint(
      containerd,
      'containerd is unreachable at /run/containerd/containerd.sock: No connection ' +
        'established. Last error: connect ENOENT /run/containerd/containerd.sock',
    ),
    /^no socket at \/run\/containerd\/containerd\.sock: start containerd, or set runtime\.socket .*kind: docker/,
  )
  t.match(runtimeUnreachableHint(docker, 'connect EACCES /var/run/docker.sock'), /may not open .*group \(`docker`\)/)
  t.match(runtimeUnreachableHint(docker, 'connect ECONNREFUSED /var/run/docker.sock'), /is Docker running\?/)
  t.equal(runtimeUnreachableHint(docker, 'Docker did not answer within 30 s'), null, 'nothing to say: no hint')
})

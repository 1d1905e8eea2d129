import t from 'tap'
import { agentUrl, bytes, formatStatus } from '../../src/commands/status.js'
import type { AgentStatus } from '../../src/agent/status.js'

const status: AgentStatus = {
  hostId: 'gpu-node-1',
  version: '0.1.0',
  takenAt: '2026-11-23T12:00:00.000Z',
  docker: { reachable: true, rootDir: '/var/lib/docker', version: '24.0.7' },
  gpu: { available: false, reason: 'nvidia-smi not found', gpus: [] },
  nvidiaRuntime: null,
  disk: {
    path: '/var/lib/docker',
    mountpoint: '/',
    sizeBytes: 1024 ** 4,
    usedBytes: 0.86 * 1024 ** 4,
    availBytes: 0.14 * 1024 ** 4,
    usedPercent: 86,
  },
  diskBreakdown: null,
  images: {
    count: 3,
    inUse: 1,
    unused: 1,
    dangling: 1,
    sizeBytes: 3 * 1024 ** 3,
    inUseSizeBytes: 1024 ** 3,
    unusedSizeBytes: 1024 ** 3,
    danglingSizeBytes: 1024 ** 3,
    cudaIncompatible: 0,
  },
  collectors: { disk: { success: true, durationSeconds: 0.01, at: '2026-11-23T12:00:00.000Z' } },
  lastPrune: null,
  lastPrewarm: null,
  coordinator: { configured: false, connected: false, pending: 0 },
  failingComponents: [],
}

t.test('a person-readable summary', async (t) => {
  const text = formatStatus(status)
  t.match(text, 'host gpu-node-1 · gpuhost 0.1.0')
  t.match(text, 'docker     24.0.7 · root /var/lib/docker')
  t.match(text, 'gpu        unavailable: nvidia-smi not found')
  t.match(text, 'disk       /: 880.6 GiB used of 1.0 TiB (86.0 %), 143.4 GiB available')
  t.match(text, 'images     3 · 3.0 GiB')
  t.match(text, 'coordinator   not configured')
  t.notMatch(text, 'failing')
  t.match(formatStatus({ ...status, disk: null, images: null }), /disk +not measured yet\nimages +not listed yet/)
  const failing = [
    { component: 'coordinator-link', error: 'outbox locked', attempts: 2, retryAt: '2026-11-23T12:00:04.000Z' },
  ]
  t.match(
    formatStatus({ ...status, failingComponents: failing }),
    'component coordinator-link not started (2 tries): outbox locked; next try 2026-11-23T12:00:04.000Z',
  )
})

t.test('the disk breakdown, when measured', async (t) => {
  t.notMatch(formatStatus(status), 'docker df')
  const GB = 1024 ** 3
  const text = formatStatus({
    ...status,
    diskBreakdown: {
      takenAt: '2026-11-23T11:00:00.000Z',
      durationSeconds: 3.25,
      imagesBytes: 40 * GB,
      bytes: {
        images_unique: 30 * GB,
        images_shared: 10 * GB,
        containers_running: GB,
        containers_stopped: 5 * GB,
        logs: 12 * GB,
        build_cache: 0,
        volumes_in_use: 2 * GB,
        volumes_dangling: 3 * GB,
      },
      topLogs: [{ id: 'c1', name: 'trainer', state: 'running', logBytes: 11 * GB }],
      largeLogs: [],
    },
  })
  t.match(
    text,
    /docker df +images 40\.0 GiB \(unique 30\.0 GiB\) · containers 1\.0 GiB running, 5\.0 GiB stopped · logs 12\.0 GiB/,
  )
  t.match(
    text,
    /build cache 0 B · volumes 2\.0 GiB in use, 3\.0 GiB dangling · measured 2026-11-23T11:00:00\.000Z in 3\.3 s/,
  )
  t.match(text, /log +11\.0 GiB trainer \(running\)/)
})

t.test('the agent URL from listen', async (t) => {
  t.equal(agentUrl('127.0.0.1:9477'), 'http://127.0.0.1:9477')
  t.equal(agentUrl('0.0.0.0:9477'), 'http://127.0.0.1:9477', 'a wildcard is reached on loopback')
  t.equal(agentUrl('[::]:9477'), 'http://[::1]:9477')
  t.equal(agentUrl('[fd00::1]:9477'), 'http://[fd00::1]:9477')
  t.equal(bytes(512), '512 B')
  t.equal(bytes(1536), '1.5 KiB')
})

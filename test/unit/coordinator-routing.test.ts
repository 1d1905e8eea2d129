import t from 'tap'
import { hostOfInstance, routeAlerts } from '../../src/coordinator/alerts.js'
import { fleetCompat, type CompatEvaluator } from '../../src/coordinator/compat.js'
import { familiarRef as normalizeRef } from '../../src/registry/reference.js'
import { COMPAT_EVALUATOR } from '../../src/coordinator/evaluator.js'
import type { HostDetail } from '../../src/coordinator/store/records.js'

t.test('instance labels lose their port, IPv6 included', async (t) => {
  t.equal(hostOfInstance('gpu-node-1:9477'), 'gpu-node-1')
  t.equal(hostOfInstance('10.0.0.7:9477'), '10.0.0.7')
  t.equal(hostOfInstance('[fe80::1]:9477'), 'fe80::1')
  t.equal(hostOfInstance('fe80::1'), 'fe80::1', 'a bare IPv6 address is not cut')
  t.equal(hostOfInstance('gpu-node-1'), 'gpu-node-1')
})

t.test('firing alerts route to the host their labels name, once per host', async (t) => {
  const known = ['gpu-node-1', 'gpu-node-2', 'gpu-node-3']
  const r = routeAlerts(
    {
      alerts: [
        { status: 'firing', labels: { alertname: 'DiskHigh', instance: 'gpu-node-1:9477' } },
        { status: 'firing', labels: { alertname: 'DiskHigh', host: 'gpu-node-2' } },
        { status: 'firing', labels: { alertname: 'DiskHigh', hostId: 'gpu-node-1' } },
        { status: 'firing', labels: { alertname: 'DiskHigh', instance: 'gpu-node-3.dc1.example:9477' } },
        { status: 'resolved', labels: { alertname: 'DiskHigh', host: 'gpu-node-3' } },
        { status: 'firing', labels: { alertname: 'DiskHigh', host: 'elsewhere' } },
        { status: 'firing', labels: { alertname: 'NoLabels' } },
      ],
    },
    known,
  )
  t.same(r.hostIds, ['gpu-node-1', 'gpu-node-2', 'gpu-node-3'])
  t.same(
    r.skipped.map((s) => s.reason),
    ['status resolved', 'no known host elsewhere', 'no host, hostId or instance label'],
  )
  const hostWins = routeAlerts(
    { alerts: [{ status: 'firing', labels: { host: 'gpu-node-2', instance: 'gpu-node-1:9477' } }] },
    known,
  )
  t.same(hostWins.hostIds, ['gpu-node-2'], 'host is preferred over instance')
})

t.test('instance names match by full name; short names only when one host answers to them', async (t) => {
  const route = (instance: string, known: string[]) => {
    const labels = { alertname: 'DiskHigh', instance: `${instance}:9477` }
    const r = routeAlerts({ alerts: [{ status: 'firing', labels }] }, known)
    return r.hostIds.length ? r.hostIds[0] : r.skipped[0].reason
  }
  const fleet = ['node-1.dc1.example', 'node-1.dc2.example', 'node-2']
  t.equal(route('node-1.dc2.example', fleet), 'node-1.dc2.example', 'the full name wins')
  t.equal(
    route('node-1.dc3.example', ['node-1.dc1.example']),
    'no known host node-1.dc3.example',
    'another domain is another host',
  )
  t.match(
    route('node-1', fleet),
    /node-1 is ambiguous: node-1.dc1.example, node-1.dc2.example/,
    'a short name of two hosts',
  )
  t.equal(route('node-1', ['node-1.dc1.example', 'node-2']), 'node-1.dc1.example', 'a short name of one host')
  t.equal(route('node-2.dc1.example', fleet), 'node-2', 'an FQDN for a host known by its short name')
  t.match(
    route('node-2.dc1.example', [...fleet, 'node-2.dc2.example']),
    /ambiguous/,
    'unless another host has that short name',
  )
})

t.test('image references are compared in their normal form', async (t) => {
  t.equal(normalizeRef('ubuntu'), 'ubuntu:latest')
  t.equal(normalizeRef('docker.io/library/ubuntu:22.04'), 'ubuntu:22.04')
  t.equal(normalizeRef('nvcr.io/nvidia/pytorch:23.10-py3'), 'nvcr.io/nvidia/pytorch:23.10-py3')
  t.equal(normalizeRef('localhost:5000/cuda'), 'localhost:5000/cuda:latest', 'a registry port is not a tag')
  t.equal(normalizeRef('repo@sha256:' + 'a'.repeat(64)), 'repo@sha256:' + 'a'.repeat(64))
})

const gpu = (driverVersion: string, cudaVersion: string) => ({ available: true, driverVersion, cudaVersion, gpus: [] })
const host = (hostId: string, over: Partial<HostDetail>): HostDetail => ({
  hostId,
  connected: true,
  lastSeen: null,
  version: '0.1.0',
  gpu: null,
  disk: null,
  images: null,
  lastPrune: null,
  lastPrewarm: null,
  labels: {},
  peers: null,
  host: null,
  actions: [],
  localImages: null,
  ...over,
})
const pytorch = {
  id: 'sha256:p',
  repoTags: ['pytorch/pytorch:2.1.0-cuda12.1'],
  repoDigests: [],
  sizeBytes: 1,
  cudaEnv: { NVIDIA_REQUIRE_CUDA: 'cuda>=12.1' },
}

t.test("fleet compat: the host's own verdict first, else the shared requirement, else why not", async (t) => {
  const hosts = [
    host('a', {
      gpu: gpu('535.104.05', '12.2'),
      localImages: [
        { ...pytorch, compat: { compatible: true, reason: 'driver 535 ≥ 530', requirement: 'cuda>=12.1' } },
      ],
    }),
    host('b', { gpu: gpu('470.82.01', '11.4') }),
    host('c', { gpu: { available: false, reason: 'nvidia-smi timed out', gpus: [] } }),
  ]
  const without = fleetCompat('pytorch/pytorch:2.1.0-cuda12.1', hosts, null)
  t.equal(without.evaluator, 'unavailable')
  t.same(without.requirement, { cudaEnv: pytorch.cudaEnv, reportedBy: 'a' })
  t.match(without.hosts[0], { hostId: 'a', compatible: true, source: 'host', driverVersion: '535.104.05' })
  t.match(without.hosts[1], {
    hostId: 'b',
    compatible: null,
    source: 'none',
    reason: /evaluator is unavailable.*NVIDIA_REQUIRE_CUDA=cuda>=12\.1.*driver 470\.82\.01/,
  })
  t.match(without.hosts[2], { hostId: 'c', compatible: null, reason: /nvidia-smi timed out/ })

  const evaluator: CompatEvaluator = (env, g) => ({
    compatible: g.cudaVersion! >= '12.1',
    reason: `${env.NVIDIA_REQUIRE_CUDA} vs CUDA ${g.cudaVersion}`,
  })
  const withEval = fleetCompat('pytorch/pytorch:2.1.0-cuda12.1', hosts, evaluator)
  t.match(withEval.hosts[1], {
    hostId: 'b',
    compatible: false,
    source: 'coordinator',
    reason: 'cuda>=12.1 vs CUDA 11.4',
  })

  const unknown = fleetCompat('nowhere/seen:1', hosts, evaluator)
  t.equal(unknown.requirement, null)
  t.match(unknown.hosts[0], { compatible: null, reason: /no host has reported/ })

  const throwing = fleetCompat('pytorch/pytorch:2.1.0-cuda12.1', hosts, () => {
    throw new Error('bad requirement')
  })
  t.match(throwing.hosts[1], { compatible: null, reason: /evaluator failed: bad requirement/ })
})

t.test('fleet compat carries kernel coverage and enforcement, from the host or the shared evaluator', async (t) => {
  const torch = { ...pytorch, cudaEnv: { CUDA_VERSION: '12.1.0', TORCH_CUDA_ARCH_LIST: '7.0 7.5' } }
  const reported = {
    compatible: true,
    reason: 'met',
    requirement: 'cuda>=12.1',
    kernels: 'missing' as const,
    kernelsReason: 'no kernel for 8.0',
    enforced: false,
  }
  const a100 = {
    available: true,
    driverVersion: '535.104.05',
    cudaVersion: '12.2',
    gpus: [{ index: 0, uuid: 'GPU-1', name: 'A100', computeCapability: '8.0', migDevices: [] }],
  }
  const t4 = { ...a100, gpus: [{ index: 0, uuid: 'GPU-2', name: 'T4', computeCapability: '7.5', migDevices: [] }] }
  const hosts = [host('a', { gpu: a100, localImages: [{ ...torch, compat: reported }] }), host('b', { gpu: t4 })]
  const fleet = fleetCompat('pytorch/pytorch:2.1.0-cuda12.1', hosts, COMPAT_EVALUATOR)
  t.match(fleet.hosts[0], { source: 'host', kernels: 'missing', kernelsReason: 'no kernel for 8.0', enforced: false })
  t.match(fleet.hosts[1], { source: 'coordinator', compatible: true, kernels: 'ok', kernelsReason: /covers GPU 0/ })
})

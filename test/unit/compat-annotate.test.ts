// Verdicts follow the GPU facts and the image list in the snapshot; a flip is an event; the
// annotator's own write does not set it off again.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CompatAnnotator } from '../../src/compat/annotate.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { SnapshotStore, summarizeImages, type ImageFacts } from '../../src/core/snapshot.js'
import { FIXTURES } from '../harness/nvidia-smi.js'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import { pino } from 'pino'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { Agent } from '../../src/agent/agent.js'
import { compatFeature } from '../../src/compat/feature.js'

const capture = (name: string) => parseNvidiaSmiXml(readFileSync(join(FIXTURES, 'xml', name), 'utf8'))
const T4 = capture('tesla-t4_driver-515.105.01_dtd-v11.xml') // CUDA 11.7
const A5000 = capture('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml') // CUDA 13.1

function image(id: string, cudaEnv: Record<string, string> | null): ImageFacts {
  return {
    id,
    repoTags: [`test/${id}:1`],
    repoDigests: [],
    sizeBytes: 1,
    sharedSizeBytes: 0,
    createdAt: '2026-01-01T00:00:00Z',
    containers: [],
    dangling: false,
    lastUsed: null,
    firstSeen: '2026-01-01T00:00:00Z',
    cudaEnv,
  }
}

t.test('annotates, follows the GPU, publishes flips, and does not loop', async (t) => {
  const store = new SnapshotStore()
  const bus = new EventBus()
  const events: AgentEvent[] = []
  bus.subscribe((e) => events.push(e))
  let imageWrites = 0
  store.on('change', (part) => {
    if (part === 'images') imageWrites++
  })
  const annotator = new CompatAnnotator(store, bus)
  await annotator.start()
  t.teardown(() => annotator.stop())

  store.set('gpu', T4)
  store.set('images', [
    image('a', { CUDA_VERSION: '12.2.0' }),
    image('b', { CUDA_VERSION: '11.0.3' }),
    image('c', {}),
    image('d', null),
  ])
  t.equal(imageWrites, 2, 'the collector write and one annotation write, no more')
  const byId = () => Object.fromEntries(store.get().images!.map((i) => [i.id, i.compat?.compatible]))
  t.same(byId(), { a: false, b: true, c: null, d: null })
  t.equal(summarizeImages(store.get().images!).cudaIncompatible, 1)
  t.equal(events.length, 0, 'first verdicts are not flips')

  store.set('gpu', A5000)
  t.same(byId(), { a: true, b: true, c: null, d: null }, 'a driver upgrade turns image a compatible')
  t.equal(events.length, 1)
  t.match(events[0], {
    type: 'compat.changed',
    data: { id: 'a', before: false, compatible: true, driverVersion: '590.44.01' },
  })

  const writes = imageWrites
  store.set('gpu', A5000)
  t.equal(imageWrites, writes, 'same facts again: the image list is not rewritten')

  // The image collector replaces the list with fresh objects that carry no verdict.
  store.set('images', [image('a', { CUDA_VERSION: '12.2.0' }), image('e', { CUDA_VERSION: '13.2.0' })])
  t.same(byId(), { a: true, e: false })
  t.equal(events.length, 1, 'a new image is not a flip; a known one keeping its verdict is not either')

  store.set('gpu', { available: false, reason: 'nvidia-smi did not answer within 10 s and was killed', gpus: [] })
  t.same(byId(), { a: null, e: null }, 'no GPU facts: no verdict')
  t.equal(events.length, 1, 'a spell without GPU facts is not a flip')
  t.match(store.get().images![0].compat!.reason, /no GPU facts: nvidia-smi did not answer/)

  store.set('gpu', T4)
  t.same(byId(), { a: false, e: false })
  t.equal(events.length, 2, 'back on the old driver: image a flips to incompatible, e stays so')
  t.match(events[1], {
    type: 'compat.changed',
    data: { id: 'a', before: true, compatible: false, driverVersion: '515.105.01' },
  })
})

t.test('the annotated snapshot renders gpuhost_images_cuda_incompatible', async (t) => {
  const store = new SnapshotStore()
  const annotator = new CompatAnnotator(store, new EventBus())
  await annotator.start()
  t.teardown(() => annotator.stop())
  store.set('gpu', T4)
  store.set('images', [
    image('a', { CUDA_VERSION: '12.2.0' }),
    image('b', { NVIDIA_REQUIRE_CUDA: 'cuda>=13.0' }),
    image('c', { CUDA_VERSION: '11.7.0' }),
  ])
  const { registry } = createAgentMetrics({ snapshot: () => store.get(), version: 'test' }, { processMetrics: false })
  const body = await registry.metrics()
  t.match(body, /^gpuhost_images_cuda_incompatible 2$/m)
  t.match(
    body,
    new RegExp(
      /^gpuhost_gpu_info\{gpu="0",uuid="GPU-d37e67a5-91dd-3774-a5cb-99096249601a",/.source +
        /name="Tesla T4",driver_version="515.105.01",cuda_version="11.7"\} 1$/.source,
      'm',
    ),
  )
})

t.test("the agent's check action answers from the snapshot's GPU facts, Docker or not", async (t) => {
  const config = parseConfig(agentConfigSchema, { tokenFile: null, docker: { socket: '/nonexistent/docker.sock' } })
  const agent = new Agent(config, pino({ level: 'silent' }), [compatFeature()])
  agent.ctx.store.set('gpu', A5000)
  const report = (await agent.ctx.actions.invoke('check', { images: ['test/x:1'] }, 'coordinator')) as any
  t.match(report.gpu, { available: true, driverVersion: '590.44.01', cudaVersion: '13.1' })
  t.match(report.docker, { reachable: false })
  t.same(report.images, [
    {
      ref: 'test/x:1',
      id: null,
      requirement: null,
      compatible: null,
      reason: 'Docker unreachable: not looked up (nor asked of a registry)',
      enforced: false,
    },
  ])
  t.equal(report.nvidiaRuntime, null, 'the runtime collector has not run')
})

t.test('verdicts say whether the NVIDIA runtime enforces them, and change with it', async (t) => {
  const store = new SnapshotStore()
  const annotator = new CompatAnnotator(store, new EventBus())
  await annotator.start()
  t.teardown(() => annotator.stop())
  store.set('gpu', T4)
  store.set('images', [image('a', { CUDA_VERSION: '12.2.0' })])
  t.equal(store.get().images![0].compat!.enforced, false, 'not read yet: not counted on')
  const legacy = {
    installed: true,
    dockerRuntimes: ['nvidia'],
    defaultRuntime: 'runc',
    mode: 'legacy',
    effectiveMode: 'legacy',
    toolkitVersion: '1.17.8',
    cdiSpecs: [],
    enforced: true,
    reason: 'mode legacy',
  }
  store.set('nvidiaRuntime', legacy)
  t.equal(store.get().images![0].compat!.enforced, true)
  store.set('nvidiaRuntime', { ...legacy, mode: 'cdi', effectiveMode: 'cdi', enforced: false })
  t.equal(store.get().images![0].compat!.enforced, false)
})

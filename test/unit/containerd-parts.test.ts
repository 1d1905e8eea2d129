// The pure parts of the containerd runtime: shared-layer accounting, chain ids, event mapping and
// the names containerd stores.
import t from 'tap'
import { createHash } from 'node:crypto'
import { accountImages, chainIds } from '../../src/runtime/containerd-accounting.js'
import { toRuntimeEvent } from '../../src/runtime/containerd-events.js'
import { containerdName } from '../../src/runtime/containerd-images.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('accounting: an item two images hold is shared; what one image alone holds is freed with it', async (t) => {
  const a = {
    id: 'a',
    items: new Map([
      ['c:m-a', 1],
      ['c:base', 100],
      ['s:base', 300],
      ['s:a', 50],
    ]),
  }
  const b = {
    id: 'b',
    items: new Map([
      ['c:m-b', 1],
      ['c:base', 100],
      ['s:base', 300],
      ['s:b', 70],
    ]),
  }
  const c = {
    id: 'c',
    items: new Map([
      ['c:m-c', 1],
      ['s:c', 20],
    ]),
  }
  const { perImage, uniqueBytes } = accountImages([a, b, c])
  t.same(perImage.get('a'), { sizeBytes: 451, sharedSizeBytes: 400 })
  t.same(perImage.get('b'), { sizeBytes: 471, sharedSizeBytes: 400 })
  t.same(perImage.get('c'), { sizeBytes: 21, sharedSizeBytes: 0 })
  t.equal(uniqueBytes, 1 + 1 + 1 + 100 + 300 + 50 + 70 + 20, 'every item once')
  const held = accountImages([c], [new Set(['s:c', 's:unknown'])])
  t.same(held.perImage.get('c'), { sizeBytes: 21, sharedSizeBytes: 20 }, "a container's chain holds the snapshot")
  t.same(accountImages([]).perImage.size, 0)
})

t.test('chain ids follow the image spec', async (t) => {
  const d = ['sha256:aaa', 'sha256:bbb', 'sha256:ccc']
  const ids = chainIds(d, sha)
  t.equal(ids[0], 'sha256:aaa', 'the first is the diff id')
  t.equal(ids[1], `sha256:${sha('sha256:aaa sha256:bbb')}`)
  t.equal(ids[2], `sha256:${sha(`${ids[1]} sha256:ccc`)}`)
  t.same(chainIds([], sha), [])
})

t.test('events: topics to the actions the collector knows; task events find their image', async (t) => {
  const imageOf = (id: string) => (id === 'c1' ? 'docker.io/library/app:1' : undefined)
  const ts = { seconds: 1700000000, nanos: 5_000_000 }
  t.same(toRuntimeEvent({ topic: '/containers/create', timestamp: ts, payload: { id: 'c2', image: 'x:1' } }, imageOf), {
    type: 'container',
    action: 'create',
    id: 'c2',
    image: 'x:1',
    atMs: 1700000000005,
  })
  t.same(toRuntimeEvent({ topic: '/tasks/start', payload: { containerId: 'c1' } }, imageOf), {
    type: 'container',
    action: 'start',
    id: 'c1',
    image: 'docker.io/library/app:1',
  })
  t.match(toRuntimeEvent({ topic: '/tasks/exit', payload: { containerId: 'c1' } }, imageOf), { action: 'die' })
  t.same(toRuntimeEvent({ topic: '/images/delete', payload: { name: 'docker.io/library/app:1' } }, imageOf), {
    type: 'image',
    action: 'delete',
    id: 'docker.io/library/app:1',
  })
  t.equal(toRuntimeEvent({ topic: '/snapshot/prepare', payload: {} }, imageOf), undefined)
  t.match(toRuntimeEvent({ topic: '/tasks/start', payload: null }, imageOf), { action: 'start' }, 'no payload')
})

t.test('names as containerd stores them', async (t) => {
  t.equal(containerdName('ubuntu'), 'docker.io/library/ubuntu:latest')
  t.equal(containerdName('ubuntu:22.04'), 'docker.io/library/ubuntu:22.04')
  t.equal(containerdName('127.0.0.1:5000/team/app:1'), '127.0.0.1:5000/team/app:1')
  t.equal(containerdName('127.0.0.1:5000/team/app'), '127.0.0.1:5000/team/app:latest')
  t.equal(
    containerdName(`nvcr.io/nvidia/cuda@sha256:${'a'.repeat(64)}`),
    `nvcr.io/nvidia/cuda@sha256:${'a'.repeat(64)}`,
  )
  t.equal(containerdName(`sha256:${'b'.repeat(64)}`), `sha256:${'b'.repeat(64)}`)
})

t.test('config: runtime defaults and bad values', async (t) => {
  t.same(parseConfig(agentConfigSchema, {}).runtime, {
    kind: 'docker',
    socket: null,
    namespace: 'k8s.io',
    kubeletConfig: '/var/lib/kubelet/config.yaml',
  })
  t.equal(parseConfig(agentConfigSchema, { runtime: { kind: 'containerd' } }).runtime.kind, 'containerd')
  t.throws(() => parseConfig(agentConfigSchema, { runtime: { kind: 'cri-o' } }), /runtime\.kind/)
  t.throws(() => parseConfig(agentConfigSchema, { runtime: { namespace: '' } }), /runtime\.namespace/)
})

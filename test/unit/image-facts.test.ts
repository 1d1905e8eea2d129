// Image facts from lists captured from a real dockerd (20.10, API 1.41): test/fixtures/docker.
import t from 'tap'
import { readFileSync } from 'node:fs'
import {
  buildImageFacts,
  containerUseTime,
  cudaEnvOf,
  imageUseTimes,
  resolveImageRef,
  type ListedContainer,
  type ListedImage,
} from '../../src/inventory/image-facts.js'
import { imageState, summarizeImages } from '../../src/core/snapshot.js'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/docker/${name}`, import.meta.url), 'utf8'))
const images: ListedImage[] = fixture('images-api-1.41.json')
const containers: ListedContainer[] = fixture('containers-api-1.41.json')
const exited = fixture('container-inspect-exited-api-1.41.json')[0]
const NOW = '2026-11-23T12:00:00.000Z'
const id = (tag: string) => images.find((i) => i.RepoTags?.includes(tag))!.Id
const DANGLING = 'sha256:594405fdd698837f68a6835d72b47c8c84c5b31e9fe9d5d9ee9806473f039ddf'

t.test('facts from the captured lists', async (t) => {
  const facts = buildImageFacts({ images, containers, cudaEnv: new Map(), usage: () => undefined, now: NOW })
  t.equal(facts.length, 5)
  const byId = new Map(facts.map((f) => [f.id, f]))
  const dangling = byId.get(DANGLING)!
  t.same(dangling.repoTags, [], 'the <none>:<none> placeholder is no tag')
  t.same(dangling.repoDigests, [], 'nor is <none>@<none> a digest')
  t.equal(dangling.dangling, true)
  const tools = byId.get(id('test/tools:1'))!
  t.same(tools.containers.map((c) => `${c.name}:${c.state}`).sort(), ['batch-job:exited', 'server:running'])
  t.equal(imageState(tools), 'in_use')
  t.equal(imageState(byId.get(id('test/retagged:1'))!), 'unused')
  t.same(byId.get(id('test/plain:1'))!.repoTags, ['test/plain:1', 'test/plain:latest'])
  t.equal(tools.sharedSizeBytes, -1, 'API 1.41 does not report shared size')
  t.equal(tools.sizeBytes, 1365392)
  t.equal(tools.createdAt, '2026-11-23T11:37:25.000Z')
  t.equal(tools.firstSeen, NOW, 'not in the usage record: first seen now')
  t.equal(tools.lastUsed, null)
  t.equal(tools.cudaEnv, null, 'not inspected yet')
  const s = summarizeImages(facts)
  t.same([s.count, s.inUse, s.unused, s.dangling], [5, 3, 1, 1])
  t.equal(
    s.sizeBytes,
    images.reduce((n, i) => n + i.Size, 0),
  )
})

t.test('usage record and CUDA env are carried into the facts', async (t) => {
  const pytorch = id('nvcr.io/nvidia/pytorch:23.10-py3')
  const facts = buildImageFacts({
    images,
    containers,
    now: NOW,
    cudaEnv: new Map([[pytorch, { CUDA_VERSION: '12.2.2' }]]),
    usage: (i) =>
      i === pytorch ? { firstSeen: '2026-01-01T00:00:00.000Z', lastUsed: '2026-02-01T00:00:00.000Z' } : undefined,
  })
  const f = facts.find((x) => x.id === pytorch)!
  t.same(f.cudaEnv, { CUDA_VERSION: '12.2.2' })
  t.equal(f.firstSeen, '2026-01-01T00:00:00.000Z')
  t.equal(f.lastUsed, '2026-02-01T00:00:00.000Z')
})

t.test('cudaEnvOf keeps only what decides CUDA compatibility', async (t) => {
  t.same(
    cudaEnvOf([
      'PATH=/usr/local/nvidia/bin:/usr/bin',
      'CUDA_VERSION=12.2.2',
      'NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=470,driver<471',
      'NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS=',
      'NVIDIA_DISABLE_REQUIRE=1',
      'NVIDIA_VISIBLE_DEVICES=all',
      'NV_CUDA_LIB_VERSION=12.2.2-1',
      'A=b=c',
    ]),
    {
      CUDA_VERSION: '12.2.2',
      NVIDIA_REQUIRE_CUDA: 'cuda>=12.2 brand=tesla,driver>=470,driver<471',
      NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS: '',
      NVIDIA_DISABLE_REQUIRE: '1',
    },
  )
  t.same(cudaEnvOf(null), {}, 'an image without Env')
  t.same(cudaEnvOf(['CUDA_VERSION=a=b']), { CUDA_VERSION: 'a=b' }, 'split on the first = only')
})

t.test('when a listed container last used its image', async (t) => {
  const c = (name: string) => containers.find((x) => x.Names?.includes(`/${name}`))!
  t.equal(containerUseTime(c('server'), undefined, NOW), NOW, 'running: now')
  t.equal(
    containerUseTime(c('batch-job'), exited.State.FinishedAt, NOW),
    '2026-11-23T11:37:25.660Z',
    'exited: when it finished',
  )
  t.equal(
    containerUseTime(c('batch-job'), undefined, NOW),
    '2026-11-23T11:37:25.000Z',
    'exited, finish unknown: when it was created',
  )
  t.equal(
    containerUseTime(c('batch-job'), '0001-01-01T00:00:00Z', NOW),
    '2026-11-23T11:37:25.000Z',
    'the zero time is no finish time',
  )
  t.equal(containerUseTime(c('trainer'), undefined, NOW), '2026-11-23T11:37:24.000Z', 'created: when it was created')
})

t.test('use times per image from containers and events', async (t) => {
  const finished = new Map([[exited.Id as string, exited.State.FinishedAt as string]])
  const used = imageUseTimes(
    images,
    containers,
    finished,
    [
      // an event for a listed container counts for the image the list names
      { containerId: containers[0].Id, image: 'ignored', at: '2026-11-23T11:50:00.000Z' },
      // a container already destroyed: resolved by the reference the event carried
      { containerId: 'gone', image: 'test/retagged:1', at: '2026-11-23T11:40:00.000Z' },
      { containerId: 'gone2', image: 'nothing/like:this', at: '2026-11-23T11:59:00.000Z' },
    ],
    NOW,
  )
  t.equal(used.get(id('test/tools:1')), NOW, 'the running container wins')
  t.equal(used.get(id('test/plain:1')), '2026-11-23T11:50:00.000Z', 'the later event beats the creation time')
  t.equal(used.get(id('test/retagged:1')), '2026-11-23T11:40:00.000Z')
  t.equal(used.get(DANGLING), undefined, 'never used')
  t.equal(used.size, 4)
})

t.test('image references as events carry them', async (t) => {
  const plain = id('test/plain:1')
  t.equal(resolveImageRef('test/plain', images), plain, 'no tag means latest')
  t.equal(resolveImageRef('docker.io/test/plain:1', images), plain, 'docker.io/ prefix')
  t.equal(resolveImageRef(plain, images), plain, 'full id')
  t.equal(resolveImageRef(plain.slice(7, 19), images), plain, 'short id')
  t.equal(resolveImageRef('nvcr.io/nvidia/pytorch:23.10-py3', images), id('nvcr.io/nvidia/pytorch:23.10-py3'))
  t.equal(resolveImageRef('test/plain:2', images), null)
  t.equal(resolveImageRef('sha256:00', images), null)
  t.equal(resolveImageRef('ubuntu', [{ Id: 'sha256:u', RepoTags: ['ubuntu:latest'], Size: 1, Created: 0 }]), 'sha256:u')
  t.equal(
    resolveImageRef('docker.io/library/ubuntu:22.04', [
      { Id: 'sha256:u', RepoTags: ['ubuntu:22.04'], Size: 1, Created: 0 },
    ]),
    'sha256:u',
  )
  t.equal(
    resolveImageRef('localhost:5000/x', [
      { Id: 'sha256:x', RepoTags: ['localhost:5000/x:latest'], Size: 1, Created: 0 },
    ]),
    'sha256:x',
    'a registry port is not a tag',
  )
})

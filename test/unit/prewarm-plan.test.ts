import t from 'tap'
import {
  cudaEnvOf,
  planPrewarm,
  type LocalImage,
  type PrewarmPlanInput,
  type RemoteFailure,
} from '../../src/prewarm/plan.js'
import type { DiskFacts, ImageCompat } from '../../src/core/snapshot.js'
import type { RemoteImage } from '../../src/registry/types.js'

const MiB = 1024 * 1024
const D = (c: string) => `sha256:${c.repeat(64)}`

function remote(ref: string, over: Partial<RemoteImage> = {}): RemoteImage {
  return {
    ref,
    registry: 'docker.io',
    repository: 'library/x',
    digest: D('a'),
    env: ['PATH=/usr/bin'],
    labels: {},
    compressedBytes: 10 * MiB,
    ...over,
  }
}

function disk(usedMiB: number, sizeMiB = 1000): DiskFacts {
  return {
    path: '/var/lib/docker',
    mountpoint: '/',
    sizeBytes: sizeMiB * MiB,
    usedBytes: usedMiB * MiB,
    availBytes: (sizeMiB - usedMiB) * MiB,
    usedPercent: (usedMiB / sizeMiB) * 100,
  }
}

// A driver that supports CUDA up to 12.2, judging CUDA_VERSION only: enough to exercise the planner.
const cuda122 = (env: Record<string, string>): ImageCompat => {
  const v = env.CUDA_VERSION
  if (!v) return { compatible: null, reason: 'no CUDA requirement', requirement: null }
  const [maj, min] = v.split('.').map(Number)
  const ok = maj < 12 || (maj === 12 && min <= 2)
  return {
    compatible: ok,
    reason: ok
      ? `cuda>=${v} met by the driver's CUDA 12.2`
      : `needs CUDA ${maj}.${min}, the driver supports up to 12.2`,
    requirement: `cuda>=${maj}.${min}`,
  }
}

function input(over: Partial<PrewarmPlanInput> & { wanted: string[] }): PrewarmPlanInput {
  return {
    local: [],
    remote: new Map(),
    disk: disk(100),
    highPercent: 85,
    expansionFactor: 2.5,
    compat: cuda122,
    ...over,
  }
}

t.test('an image not present locally is pulled', async (t) => {
  const plan = planPrewarm(input({ wanted: ['x:1'], remote: new Map([['x:1', remote('x:1')]]) }))
  t.equal(plan.items[0].action, 'pull')
  t.equal(plan.items[0].reason, 'not present locally')
  t.equal(plan.items[0].estimatedBytes, 25 * MiB, 'compressed size × expansion factor')
  t.equal(plan.plannedBytes, 25 * MiB)
})

t.test('same digest locally: present, on the registry, a mirror, or through an index digest', async (t) => {
  const local: LocalImage[] = [
    { id: 'sha256:1', repoTags: ['x:1'], repoDigests: [`x@${D('a')}`] },
    { id: 'sha256:2', repoTags: ['127.0.0.1:5000/team/y:2'], repoDigests: [`127.0.0.1:5001/team/y@${D('b')}`] },
    { id: 'sha256:3', repoTags: ['z:3'], repoDigests: [`z@${D('c')}`] },
  ]
  const plan = planPrewarm(
    input({
      wanted: ['x:1', '127.0.0.1:5000/team/y:2', 'z:3', `x@${D('a')}`],
      local,
      mirrors: { '127.0.0.1:5000': ['127.0.0.1:5001'] },
      remote: new Map<string, RemoteImage>([
        ['x:1', remote('x:1')],
        ['127.0.0.1:5000/team/y:2', remote('y', { registry: '127.0.0.1:5000', repository: 'team/y', digest: D('b') })],
        ['z:3', remote('z:3', { repository: 'library/z', digest: D('d'), indexDigest: D('c') })],
        [`x@${D('a')}`, remote('x')],
      ]),
    }),
  )
  t.same(
    plan.items.map((i) => i.action),
    ['present', 'present', 'present', 'present'],
  )
  t.match(plan.items[2].reason, D('c'), 'names the digest the tag points at')
})

t.test('a moved tag is pulled again, and says why', async (t) => {
  const local: LocalImage[] = [{ id: 'sha256:1', repoTags: ['x:1'], repoDigests: [`x@${D('0')}`] }]
  const plan = planPrewarm(
    input({ wanted: ['docker.io/library/x:1'], local, remote: new Map([['docker.io/library/x:1', remote('x:1')]]) }),
  )
  t.equal(plan.items[0].action, 'pull')
  t.match(plan.items[0].reason, /tag now points at sha256:a+/)
})

t.test('the same digest under another repository is not "present"', async (t) => {
  const local: LocalImage[] = [{ id: 'sha256:1', repoTags: ['other:1'], repoDigests: [`other@${D('a')}`] }]
  const plan = planPrewarm(input({ wanted: ['x:1'], local, remote: new Map([['x:1', remote('x:1')]]) }))
  t.equal(plan.items[0].action, 'pull')
})

t.test('an image the driver cannot run is skipped with the reason, whatever the disk', async (t) => {
  const plan = planPrewarm(
    input({
      wanted: ['cuda:12.4', 'cuda:12.2', 'plain:1'],
      disk: disk(0),
      remote: new Map([
        ['cuda:12.4', remote('cuda:12.4', { env: ['CUDA_VERSION=12.4.1'] })],
        ['cuda:12.2', remote('cuda:12.2', { env: ['CUDA_VERSION=12.2.0', 'PATH=/bin'] })],
        ['plain:1', remote('plain:1')],
      ]),
    }),
  )
  t.same(
    plan.items.map((i) => i.action),
    ['skip', 'pull', 'pull'],
  )
  t.match(plan.items[0].reason, /^the host's driver cannot run it: needs CUDA 12\.4/)
  t.equal(plan.items[0].estimatedBytes, undefined, 'no disk estimate for a skipped image')
})

t.test('a pull that would cross the high watermark is skipped; later smaller ones still fit', async (t) => {
  // 1000 MiB disk, 800 used, watermark 85 % = 850: room for 50 MiB.
  const plan = planPrewarm(
    input({
      wanted: ['a:1', 'big:1', 'b:1', 'c:1'],
      disk: disk(800),
      remote: new Map([
        ['a:1', remote('a:1', { compressedBytes: 8 * MiB })], // 20 MiB
        ['big:1', remote('big:1', { compressedBytes: 40 * MiB })], // 100 MiB: no
        ['b:1', remote('b:1', { compressedBytes: 8 * MiB })], // 20 MiB: 840 ≤ 850
        ['c:1', remote('c:1', { compressedBytes: 8 * MiB })], // 20 MiB: 860 > 850
      ]),
    }),
  )
  t.same(
    plan.items.map((i) => i.action),
    ['pull', 'skip', 'pull', 'skip'],
  )
  t.match(
    plan.items[1].reason,
    new RegExp(
      /the disk would reach 92\.0% after the pull \(≈100\.0 MiB: 40\.0 MiB compressed × 2\.5\), /.source +
        /over prune\.highPercent 85%/.source,
    ),
  )
  t.equal(plan.items[1].needBytes, 70 * MiB)
  t.equal(plan.items[3].needBytes, 10 * MiB)
  t.equal(plan.needBytes, 70 * MiB)
  t.equal(plan.plannedBytes, 40 * MiB)
})

t.test('the watermark counts root-reserved blocks as used, as df does', async (t) => {
  // 1000 MiB, 800 used, 100 reserved: 800/900 = 88.9 % already.
  const d = { ...disk(800), availBytes: 100 * MiB }
  const plan = planPrewarm(
    input({ wanted: ['a:1'], disk: d, remote: new Map([['a:1', remote('a:1', { compressedBytes: MiB })]]) }),
  )
  t.equal(plan.items[0].action, 'skip')
})

t.test('prune notes appear in the reasons', async (t) => {
  const remotes = new Map([['a:1', remote('a:1', { compressedBytes: 40 * MiB })]])
  const fits = planPrewarm(
    input({
      wanted: ['a:1'],
      disk: disk(500),
      remote: remotes,
      prune: { attempted: true, freedBytes: 300 * MiB, note: 'x' },
    }),
  )
  t.equal(fits.items[0].action, 'pull')
  t.match(fits.items[0].reason, /a prune freed 300\.0 MiB first to make room/)
  const still = planPrewarm(
    input({
      wanted: ['a:1'],
      disk: disk(840),
      remote: remotes,
      prune: {
        attempted: true,
        freedBytes: 0,
        note: 'a prune could free only 3.0 MiB of the 90.0 MiB needed, so none was run',
      },
    }),
  )
  t.equal(still.items[0].action, 'skip')
  t.match(still.items[0].reason, /; a prune could free only 3\.0 MiB/)
})

t.test('registry failures: fail with the reason, unless the tag is already here', async (t) => {
  const failure: RemoteFailure = {
    error: '127.0.0.1:5000/library/gone: not found (MANIFEST_UNKNOWN: manifest unknown)',
    kind: 'not_found',
  }
  const plan = planPrewarm(
    input({
      wanted: ['gone:1', 'kept:1'],
      local: [{ id: 'sha256:1', repoTags: ['kept:1'], repoDigests: [] }],
      remote: new Map<string, RemoteImage | RemoteFailure>([
        ['gone:1', failure],
        ['kept:1', { error: 'registry docker.io unreachable: ECONNREFUSED' }],
      ]),
    }),
  )
  t.equal(plan.items[0].action, 'fail')
  t.equal(plan.items[0].reason, failure.error)
  t.equal(plan.items[1].action, 'present')
  t.match(plan.items[1].reason, /could not be checked for a newer digest: registry docker\.io unreachable/)
})

t.test('latest (written or implied) is warned about; digests and versions are not', async (t) => {
  const refs = ['x', 'x:latest', 'x:2.13.0', `x@${D('a')}`]
  const plan = planPrewarm(input({ wanted: refs, remote: new Map(refs.map((r) => [r, remote(r)])) }))
  t.same(
    plan.items.map((i) => i.warnings.length),
    [1, 0, 0],
    'x and x:latest are the same image: planned once',
  )
  t.equal(plan.items.length, 3)
  t.match(plan.items[0].warnings[0], /moving tag "latest"/)
})

t.test('an invalid reference fails alone', async (t) => {
  const plan = planPrewarm(input({ wanted: ['Bad:Ref', 'x:1'], remote: new Map([['x:1', remote('x:1')]]) }))
  t.equal(plan.items[0].action, 'fail')
  t.match(plan.items[0].reason, /invalid image reference "Bad:Ref"/)
  t.equal(plan.items[1].action, 'pull')
})

t.test('unknown disk: pulled with a warning', async (t) => {
  const plan = planPrewarm(input({ wanted: ['x:1'], disk: null, remote: new Map([['x:1', remote('x:1')]]) }))
  t.equal(plan.items[0].action, 'pull')
  t.match(plan.items[0].warnings, [/disk usage unknown/])
})

t.test('cudaEnvOf keeps only what the compat evaluator reads', async (t) => {
  t.same(
    cudaEnvOf([
      'PATH=/usr/bin',
      'CUDA_VERSION=12.2.0',
      'NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=470,driver<471',
      'NVIDIA_DISABLE_REQUIRE=1',
      'NVIDIA_VISIBLE_DEVICES=all',
    ]),
    {
      CUDA_VERSION: '12.2.0',
      NVIDIA_REQUIRE_CUDA: 'cuda>=12.2 brand=tesla,driver>=470,driver<471',
      NVIDIA_DISABLE_REQUIRE: '1',
    },
  )
})

t.test('many random plans: every wanted image gets exactly one verdict and pulls never overfill', async (t) => {
  let seed = 42
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let n = 0; n < 2000; n++) {
    const count = 1 + Math.floor(rnd() * 6)
    const wanted = Array.from({ length: count }, (_, i) => `img${i}:${Math.floor(rnd() * 3)}`)
    const remotes = new Map(
      wanted.map((r) => [
        r,
        remote(r, {
          repository: `library/${r.split(':')[0]}`,
          compressedBytes: Math.floor(rnd() * 50 * MiB),
          env: rnd() < 0.3 ? ['CUDA_VERSION=12.4'] : [],
        }),
      ]),
    )
    const d = disk(Math.floor(rnd() * 900))
    const plan = planPrewarm(input({ wanted, disk: d, remote: remotes }))
    const limit = Math.floor((d.sizeBytes * 85) / 100)
    if (d.usedBytes + plan.plannedBytes > limit && plan.plannedBytes > 0) t.fail(`plan ${n} overfills`)
    if (plan.items.length !== new Set(wanted).size) t.fail(`plan ${n} lost an image`)
  }
  t.pass('2000 plans checked')
})

t.test('the image ID (config digest) identifies an image whose RepoDigests went with a mirror tag', async (t) => {
  const local: LocalImage[] = [{ id: D('c'), repoTags: ['127.0.0.1:5000/team/y:2'], repoDigests: [] }]
  const y = remote('y', { registry: '127.0.0.1:5001', repository: 'team/y', digest: D('b'), configDigest: D('c') })
  const plan = planPrewarm(
    input({
      wanted: ['127.0.0.1:5000/team/y:2', '127.0.0.1:5000/team/y:3'],
      local,
      remote: new Map([
        ['127.0.0.1:5000/team/y:2', y],
        ['127.0.0.1:5000/team/y:3', y],
      ]),
    }),
  )
  t.equal(plan.items[0].action, 'present')
  t.equal(plan.items[1].action, 'pull', 'the same image under another tag still needs that tag')
})

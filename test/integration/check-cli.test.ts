// gpuhost check and gpuhost compat as users run them: exit codes, JSON shapes, the human table,
// a hung nvidia-smi, Docker away, and verdicts for images in a private dockerd.
import t from 'tap'
import { stringify } from 'yaml'
import { runCli, runCliAsync, testDir } from '../harness/agent.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { freePort } from '../harness/ports.js'

const T4 = 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml' // brand NVIDIA, driver 515.105.01, CUDA 11.7

function config(t: Parameters<typeof testDir>[0], c: Record<string, unknown>): string {
  return testDir(t).file('agent.yaml', stringify({ tokenFile: null, ...c }))
}

t.test('compat: verdicts, forward compatibility and exit codes', async (t) => {
  const fwd = 'cuda>=11.8 brand=tesla,driver>=470,driver<471'
  const tesla = runCli(['compat', '--json', '--driver', '470.82.01', '--brand', 'tesla', '--require', fwd])
  t.equal(tesla.code, 0)
  t.same(JSON.parse(tesla.stdout), {
    compatible: true,
    matched: 'brand=tesla,driver>=470,driver<471',
    requirement: fwd,
    driverVersion: '470.82.01',
    cudaVersion: '11.4',
    brand: 'tesla',
    arch: null,
    reason: 'met on a GPU of brand tesla with driver 470.82.01, CUDA 11.4: brand=tesla,driver>=470,driver<471',
  })
  const geforce = runCli(['compat', '--json', '--driver', '470.82.01', '--brand', 'geforce', '--require', fwd])
  t.equal(geforce.code, 1, 'incompatible: exit 1')
  t.match(JSON.parse(geforce.stdout), {
    compatible: false,
    matched: null,
    reason: /cuda>=11\.8 does not hold, nor does any of the 1 other alternative/,
  })
  const human = runCli(['compat', '--driver', '470.82.01', '--brand', 'GeForce', '--require', fwd])
  t.match(
    human.stdout,
    /^INCOMPATIBLE: --require not met on a GPU of brand geforce with driver 470\.82\.01, CUDA 11\.4/,
  )
  t.match(JSON.parse(runCli(['compat', '--json', '--driver', '535.104.05', '--image-cuda', '12.2.2']).stdout), {
    compatible: true,
    cudaVersion: '12.2',
    matched: 'cuda>=12.2',
  })
  t.equal(runCli(['compat', '--driver', '535.104.05', '--image-cuda', '12.3.0']).code, 1)
  t.equal(
    runCli(['compat', '--driver', '535.104.05', '--cuda', '12.4', '--image-cuda', '12.3.0']).code,
    0,
    '--cuda overrides the table',
  )
})

t.test('compat: malformed expressions exit 2 with the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['cuda>=11.8 brand=tesla,driver=<470', /unknown operator "=<"/],
    ['cuda>=99 gpu>=1', /unknown key "gpu"/],
    ['cuda>=11.x', /"11\.x" is not a version/],
    ['cuda>=99 brand>=tesla', /brand compares only with = or !=/],
    ['cuda', /no operator/],
  ]
  for (const [expr, reason] of cases) {
    const r = runCli(['compat', '--driver', '470.82.01', '--brand', 'tesla', '--require', expr])
    t.equal(r.code, 2, `${expr}: exit 2`)
    t.match(r.stderr, reason, `${expr}: the reason`)
    const j = runCli(['compat', '--json', '--driver', '470.82.01', '--brand', 'tesla', '--require', expr])
    t.match(JSON.parse(j.stdout), { compatible: null, invalid: reason })
  }
  t.equal(
    runCli(['compat', '--driver', '470.82.01', '--image-cuda', '11.04']).code,
    2,
    'a CUDA_VERSION the toolkit rejects',
  )
  t.equal(runCli(['compat', '--driver', 'latest', '--require', 'cuda>=11']).code, 2, 'a driver that is not a version')
  t.equal(
    runCli(['compat', '--driver', '470.82.01', '--brand', 'radeon', '--require', 'cuda>=11']).code,
    2,
    'not a brand token',
  )
  const before70 = ['compat', '--driver', '340.108', '--require', 'cuda>=9']
  t.equal(runCli(before70).code, 2, 'no CUDA version known for that driver without --cuda')
  t.equal(runCli([...before70, '--cuda', '6.5']).code, 1, 'unless --cuda gives it')
  t.equal(runCli(['compat', '--driver', '470.82.01']).code, 2, 'no requirement given')
  const branch = runCli(['compat', '--driver', '535', '--image-cuda', '12.2.2'])
  t.equal(branch.code, 2, 'a branch (535) is not a release: refused, not read as 535.0')
  t.match(branch.stderr, /--driver 535: a driver branch, not a release; give the version nvidia-smi prints/)
})

t.test('compat: the brand/arch note only where the requirement has a brand or arch condition', async (t) => {
  const plain = runCli(['compat', '--driver', '535.104.05', '--image-cuda', '12.2.2'])
  t.equal(plain.stdout, 'compatible: met on any GPU with driver 535.104.05, CUDA 12.2: cuda>=12.2\n')
  const branded = runCli(['compat', '--driver', '535.104.05', '--require', 'cuda>=12.2 brand=tesla,driver>=470'])
  t.match(branded.stdout, /on any GPU \(no --brand or --arch: brand and arch conditions hold/)
})

t.test('compat: a fact not given and not in the table is unknown, exit 2, never a silent yes', async (t) => {
  const old = runCli(['compat', '--json', '--driver', '390.25', '--image-cuda', '12.4.1'])
  t.equal(old.code, 1, '390.25 supports CUDA 9.0 by the table')
  t.match(JSON.parse(old.stdout), { compatible: false, cudaVersion: '9.0' })
  const older = runCli(['compat', '--json', '--driver', '340.108', '--image-cuda', '12.4.1'])
  t.equal(older.code, 2)
  t.match(JSON.parse(older.stdout), {
    compatible: null,
    cudaVersion: undefined,
    unknown: [/cuda>=12\.4 \(the driver's CUDA version is unknown\)/],
  })
  t.match(
    runCli(['compat', '--driver', '340.108', '--image-cuda', '12.4.1']).stdout,
    /^UNKNOWN: cannot tell with driver 340\.108, CUDA unknown/,
  )
  t.equal(
    runCli(['compat', '--driver', '535.104.05', '--brand', 'tesla', '--require', 'arch>=9.0']).code,
    2,
    'arch not given',
  )
  t.equal(
    runCli(['compat', '--driver', '535.104.05', '--brand', 'tesla', '--arch', '8.0', '--require', 'arch>=9.0']).code,
    1,
  )
})

t.test('check with nvidia-smi hanging and Docker away: GPU facts unavailable, exit 69, in time', async (t) => {
  const file = config(t, {
    gpu: { nvidiaSmi: fakeNvidiaSmi(t, { hang: true }), timeoutSeconds: 2 },
    docker: { socket: '/nonexistent/docker.sock' },
  })
  const r = await runCliAsync(['check', '--json', '--config', file])
  t.comment(`gpuhost check answered after ${r.ms} ms with gpu.timeoutSeconds 2`)
  t.equal(r.code, 69, 'Docker unreachable: 69')
  const out = JSON.parse(r.stdout)
  t.equal(out.gpu.available, false)
  t.match(out.gpu.reason, /did not answer within 2 s and was killed/)
  t.match(out.docker, { reachable: false, reason: /Docker is unreachable/ })
  t.same(out.images, [])
})

t.test('check prints GPU facts when Docker is away', async (t) => {
  const file = config(t, {
    gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml' }) },
    docker: { socket: '/nonexistent/docker.sock' },
  })
  const r = runCli(['check', '--json', '--config', file])
  t.equal(r.code, 69)
  const out = JSON.parse(r.stdout)
  t.match(out.gpu, { available: true, driverVersion: '590.44.01', cudaVersion: '13.1' })
  t.match(out.gpu.gpus[1], {
    index: 1,
    uuid: 'GPU-12345678-aaaa-bbbb-cccc-0123456789cd',
    name: 'NVIDIA RTX A5000',
    brand: 'NVIDIA RTX',
    brandToken: 'nvidiartx',
    memoryTotalBytes: 24564 * 1024 * 1024,
  })
  const human = runCli(['check', '--config', file])
  t.match(human.stdout, /GPU: driver 590\.44\.01, CUDA 13\.1, 2 GPUs/)
  t.match(human.stdout, /NVIDIA RTX A5000 +NVIDIA RTX \(nvidiartx\) +- +24\.0 GiB/)
  t.match(
    human.stdout,
    /Docker: Docker is unreachable.*\n {2}no socket at \/nonexistent\/docker\.sock: start Docker, or set/,
  )
})

t.test('check --image with the engine away asks no registry; containerd is named as such', async (t) => {
  // a mirror that counts who reaches it: with the engine down nothing should
  const { createServer } = await import('node:net')
  let connections = 0
  const mirror = createServer((s) => {
    connections++
    s.destroy()
  })
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r))
  t.teardown(() => mirror.close())
  const mirrorUrl = `http://127.0.0.1:${(mirror.address() as { port: number }).port}`
  for (const runtime of [
    { docker: { socket: '/nonexistent/docker.sock' } },
    { runtime: { kind: 'containerd', socket: '/nonexistent/containerd.sock' } },
  ]) {
    const engine = 'runtime' in runtime ? 'containerd' : 'Docker'
    const file = config(t, {
      gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: T4 }) },
      prewarm: { mirrors: { 'docker.io': [mirrorUrl] } },
      ...runtime,
    })
    const r = await runCliAsync(['check', '--json', '--config', file, '--image', 'nvidia/cuda:12.2.2-base-ubuntu22.04'])
    t.equal(r.code, 69, `${engine} away: 69`)
    const out = JSON.parse(r.stdout)
    t.match(out.docker, { reachable: false, kind: engine.toLowerCase(), hint: /^no socket at \/nonexistent\// })
    t.match(out.images, [
      { compatible: null, reason: `${engine} unreachable: not looked up (nor asked of a registry)` },
    ])
    const human = runCli(['check', '--config', file, '--image', 'nvidia/cuda:12.2.2-base-ubuntu22.04'])
    t.match(human.stdout, new RegExp(`^${engine}: ${engine} is unreachable`, 'm'), `labelled ${engine}`)
  }
  t.equal(connections, 0, 'the mirror was never reached')
})

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('check against a private dockerd: a verdict for each local image', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const small = 64 * 1024
    makeImage(dockerd, { ref: 'test/cuda-legacy:11.7', sizeBytes: small, env: { CUDA_VERSION: '11.7.1' } })
    makeImage(dockerd, { ref: 'test/cuda-legacy:12.2', sizeBytes: small, env: { CUDA_VERSION: '12.2.0' } })
    makeImage(dockerd, {
      ref: 'test/cuda-fwd:11.8',
      sizeBytes: small,
      env: {
        CUDA_VERSION: '11.8.0',
        NVIDIA_REQUIRE_CUDA: 'cuda>=11.8 brand=tesla,driver>=515,driver<516 brand=nvidia,driver>=515,driver<516',
      },
    })
    makeImage(dockerd, {
      ref: 'test/cuda-off:12.2',
      sizeBytes: small,
      env: { CUDA_VERSION: '12.2.0', NVIDIA_DISABLE_REQUIRE: 'true' },
    })
    makeImage(dockerd, {
      ref: 'test/cuda-bad:1',
      sizeBytes: small,
      env: { NVIDIA_REQUIRE_CUDA: 'cuda>=13 driver=<470' },
    })
    makeImage(dockerd, { ref: 'test/plain:1', sizeBytes: small })
    const file = config(t, {
      gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: T4 }) },
      docker: { socket: dockerd.socket },
    })

    const r = runCli(['check', '--json', '--config', file])
    t.equal(r.code, 1, 'an incompatible image: exit 1')
    const out = JSON.parse(r.stdout)
    t.match(out.gpu, { available: true, driverVersion: '515.105.01', cudaVersion: '11.7' })
    t.same(out.docker, { reachable: true, kind: 'docker' })
    t.type(out.nvidiaRuntime.enforced, 'boolean', 'the NVIDIA runtime facts of this host are in the report')
    const byRef = Object.fromEntries(out.images.map((i: { ref: string }) => [i.ref, i]))
    t.same(Object.keys(byRef).sort(), [
      'test/cuda-bad:1',
      'test/cuda-fwd:11.8',
      'test/cuda-legacy:11.7',
      'test/cuda-legacy:12.2',
      'test/cuda-off:12.2',
      'test/plain:1',
    ])
    t.match(byRef['test/cuda-legacy:11.7'], {
      compatible: true,
      requirement: 'cuda>=11.7',
      id: /^sha256:/,
      enforced: out.nvidiaRuntime.enforced,
    })
    t.match(byRef['test/cuda-legacy:12.2'], {
      compatible: false,
      requirement: 'cuda>=12.2',
      reason: /cuda>=12\.2 does not hold/,
    })
    t.match(
      byRef['test/cuda-fwd:11.8'],
      { compatible: true, reason: /brand=nvidia,driver>=515,driver<516/ },
      'a T4 (brand NVIDIA) on 515 through the forward-compatible branch',
    )
    t.match(byRef['test/cuda-off:12.2'], { compatible: null, reason: /NVIDIA_DISABLE_REQUIRE/ })
    t.match(byRef['test/cuda-bad:1'], { compatible: false, reason: /invalid requirement expression/ })
    t.match(byRef['test/plain:1'], { compatible: null, reason: 'no CUDA requirement', requirement: null })

    // A registry on loopback that is not running: the lookup is tried and fails with the reason.
    const absent = `127.0.0.1:${await freePort()}/nvidia/pytorch:24.01-py3`
    const some = JSON.parse(
      runCli(['check', '--json', '--config', file, '--image', 'test/cuda-legacy:11.7', '--image', absent]).stdout,
    )
    t.equal(some.images.length, 2)
    t.match(some.images[0], { ref: 'test/cuda-legacy:11.7', compatible: true, source: 'local' })
    t.match(some.images[1], {
      ref: absent,
      id: null,
      requirement: null,
      compatible: null,
      reason: /^not present locally; registry lookup failed: registry 127\.0\.0\.1:\d+ unreachable/,
    })
    t.equal(
      runCli(['check', '--config', file, '--image', 'test/cuda-legacy:11.7']).code,
      0,
      'only compatible images asked: exit 0',
    )

    const human = runCli(['check', '--config', file]).stdout
    t.match(human, /test\/cuda-legacy:12\.2 +INCOMPATIBLE +unknown +CUDA_VERSION not met/)
    t.match(human, /test\/plain:1 +no verdict +unknown +no CUDA requirement/)
  })

  t.test('check with compute capabilities: arch verdicts, kernel coverage, and unknown without them', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const small = 64 * 1024
    makeImage(dockerd, { ref: 'test/hopper-only:1', sizeBytes: small, env: { NVIDIA_REQUIRE_ARCH: 'arch>=9.0' } })
    makeImage(dockerd, {
      ref: 'test/torch-volta:1',
      sizeBytes: small,
      env: { CUDA_VERSION: '12.1.0', TORCH_CUDA_ARCH_LIST: '7.0 7.5' },
    })
    makeImage(dockerd, {
      ref: 'test/torch-ptx:1',
      sizeBytes: small,
      env: { CUDA_VERSION: '12.1.0', TORCH_CUDA_ARCH_LIST: '7.0 7.5+PTX' },
    })
    const a100 = fakeNvidiaSmi(t, {
      fixture: 'xml/a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml',
      queryGpu: 'csv/derived/a100-sxm4-80gb_driver-535.54.03_uuid-compute_cap.csv',
    })
    const file = config(t, { gpu: { nvidiaSmi: a100 }, docker: { socket: dockerd.socket } })
    const r = runCli(['check', '--json', '--config', file])
    t.equal(r.code, 1)
    const out = JSON.parse(r.stdout)
    t.equal(out.gpu.gpus[0].computeCapability, '8.0')
    const byRef = Object.fromEntries(out.images.map((i: { ref: string }) => [i.ref, i]))
    t.match(byRef['test/hopper-only:1'], {
      compatible: false,
      reason: /compute capability 8\.0.*arch>=9\.0 does not hold/,
    })
    t.match(byRef['test/torch-volta:1'], { compatible: true, kernels: 'missing', kernelsMissingOnEveryGpu: true })
    t.match(byRef['test/torch-ptx:1'], { compatible: true, kernels: 'ok' })
    t.equal(runCli(['check', '--config', file, '--image', 'test/torch-ptx:1']).code, 0)
    t.equal(runCli(['check', '--config', file, '--image', 'test/torch-volta:1']).code, 1, 'a kernel for no GPU: exit 1')
    t.match(runCli(['check', '--config', file]).stdout, /test\/torch-volta:1 +compatible +MISSING +.*no kernel/)

    // The same host without compute_cap (a driver whose nvidia-smi lacks the field): arch is unknown.
    const p400 = fakeNvidiaSmi(t, {
      fixture: 'xml/quadro-p400_driver-418.43_no-doctype.xml',
      queryGpu: 'csv/derived/quadro-p400_driver-418.43_no-compute_cap.csv',
    })
    const oldFile = config(t, { gpu: { nvidiaSmi: p400 }, docker: { socket: dockerd.socket } })
    const unknown = runCli(['check', '--json', '--config', oldFile, '--image', 'test/hopper-only:1'])
    t.equal(unknown.code, 2, 'unknown: exit 2')
    const u = JSON.parse(unknown.stdout)
    t.match(u.gpu, { computeCapabilityUnknown: /Field "compute_cap" is not a valid field to query/ })
    t.match(u.images[0], { compatible: null, unknown: [/arch>=9\.0 \(the GPU's compute capability is unknown\)/] })
    t.match(
      runCli(['check', '--config', oldFile, '--image', 'test/hopper-only:1']).stdout,
      /test\/hopper-only:1 +UNKNOWN/,
    )
  })
}

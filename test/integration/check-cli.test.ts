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
    compatible: true, matched: 'brand=tesla,driver>=470,driver<471', requirement: fwd, driverVersion: '470.82.01', cudaVersion: '11.4',
    brand: 'tesla', arch: null, reason: 'met on a GPU of brand tesla with driver 470.82.01, CUDA 11.4: brand=tesla,driver>=470,driver<471',
  })
  const geforce = runCli(['compat', '--json', '--driver', '470.82.01', '--brand', 'geforce', '--require', fwd])
  t.equal(geforce.code, 1, 'incompatible: exit 1')
  t.match(JSON.parse(geforce.stdout), { compatible: false, matched: null, reason: /cuda>=11\.8 does not hold, nor does any of the 1 other alternative/ })
  const human = runCli(['compat', '--driver', '470.82.01', '--brand', 'GeForce', '--require', fwd])
  t.match(human.stdout, /^INCOMPATIBLE: --require not met on a GPU of brand geforce with driver 470\.82\.01, CUDA 11\.4/)
  t.match(JSON.parse(runCli(['compat', '--json', '--driver', '535.104.05', '--image-cuda', '12.2.2']).stdout), { compatible: true, cudaVersion: '12.2', matched: 'cuda>=12.2' })
  t.equal(runCli(['compat', '--driver', '535.104.05', '--image-cuda', '12.3.0']).code, 1)
  t.equal(runCli(['compat', '--driver', '535.104.05', '--cuda', '12.4', '--image-cuda', '12.3.0']).code, 0, '--cuda overrides the table')
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
  t.equal(runCli(['compat', '--driver', '470.82.01', '--image-cuda', '11.04']).code, 2, 'a CUDA_VERSION the toolkit rejects')
  t.equal(runCli(['compat', '--driver', 'latest', '--require', 'cuda>=11']).code, 2, 'a driver that is not a version')
  t.equal(runCli(['compat', '--driver', '470.82.01', '--brand', 'radeon', '--require', 'cuda>=11']).code, 2, 'not a brand token')
  t.equal(runCli(['compat', '--driver', '396.54', '--require', 'cuda>=9']).code, 2, 'no CUDA version known for that driver without --cuda')
  t.equal(runCli(['compat', '--driver', '470.82.01']).code, 2, 'no requirement given')
})

t.test('check with nvidia-smi hanging and Docker away: GPU facts unavailable, exit 69, in time', async (t) => {
  const file = config(t, { gpu: { nvidiaSmi: fakeNvidiaSmi(t, { hang: true }), timeoutSeconds: 2 }, docker: { socket: '/nonexistent/docker.sock' } })
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
  const file = config(t, { gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml' }) }, docker: { socket: '/nonexistent/docker.sock' } })
  const r = runCli(['check', '--json', '--config', file])
  t.equal(r.code, 69)
  const out = JSON.parse(r.stdout)
  t.match(out.gpu, { available: true, driverVersion: '590.44.01', cudaVersion: '13.1' })
  t.match(out.gpu.gpus[1], { index: 1, uuid: 'GPU-12345678-aaaa-bbbb-cccc-0123456789cd', name: 'NVIDIA RTX A5000', brand: 'NVIDIA RTX', brandToken: 'nvidiartx', memoryTotalBytes: 24564 * 1024 * 1024 })
  const human = runCli(['check', '--config', file])
  t.match(human.stdout, /GPU: driver 590\.44\.01, CUDA 13\.1, 2 GPUs/)
  t.match(human.stdout, /NVIDIA RTX A5000 +NVIDIA RTX \(nvidiartx\) +24\.0 GiB/)
  t.match(human.stdout, /Docker: Docker is unreachable/)
})

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('check against a private dockerd: a verdict for each local image', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const small = 64 * 1024
    makeImage(dockerd, { ref: 'test/cuda-legacy:11.7', sizeBytes: small, env: { CUDA_VERSION: '11.7.1' } })
    makeImage(dockerd, { ref: 'test/cuda-legacy:12.2', sizeBytes: small, env: { CUDA_VERSION: '12.2.0' } })
    makeImage(dockerd, { ref: 'test/cuda-fwd:11.8', sizeBytes: small, env: { CUDA_VERSION: '11.8.0', NVIDIA_REQUIRE_CUDA: 'cuda>=11.8 brand=tesla,driver>=515,driver<516 brand=nvidia,driver>=515,driver<516' } })
    makeImage(dockerd, { ref: 'test/cuda-off:12.2', sizeBytes: small, env: { CUDA_VERSION: '12.2.0', NVIDIA_DISABLE_REQUIRE: 'true' } })
    makeImage(dockerd, { ref: 'test/cuda-bad:1', sizeBytes: small, env: { NVIDIA_REQUIRE_CUDA: 'cuda>=13 driver=<470' } })
    makeImage(dockerd, { ref: 'test/plain:1', sizeBytes: small })
    const file = config(t, { gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: T4 }) }, docker: { socket: dockerd.socket } })

    const r = runCli(['check', '--json', '--config', file])
    t.equal(r.code, 1, 'an incompatible image: exit 1')
    const out = JSON.parse(r.stdout)
    t.match(out.gpu, { available: true, driverVersion: '515.105.01', cudaVersion: '11.7' })
    t.same(out.docker, { reachable: true })
    const byRef = Object.fromEntries(out.images.map((i: { ref: string }) => [i.ref, i]))
    t.same(Object.keys(byRef).sort(), ['test/cuda-bad:1', 'test/cuda-fwd:11.8', 'test/cuda-legacy:11.7', 'test/cuda-legacy:12.2', 'test/cuda-off:12.2', 'test/plain:1'])
    t.match(byRef['test/cuda-legacy:11.7'], { compatible: true, requirement: 'cuda>=11.7', id: /^sha256:/ })
    t.match(byRef['test/cuda-legacy:12.2'], { compatible: false, requirement: 'cuda>=12.2', reason: /cuda>=12\.2 does not hold/ })
    t.match(byRef['test/cuda-fwd:11.8'], { compatible: true, reason: /brand=nvidia,driver>=515,driver<516/ }, 'a T4 (brand NVIDIA) on 515 through the forward-compatible branch')
    t.match(byRef['test/cuda-off:12.2'], { compatible: null, reason: /NVIDIA_DISABLE_REQUIRE/ })
    t.match(byRef['test/cuda-bad:1'], { compatible: false, reason: /invalid requirement expression/ })
    t.match(byRef['test/plain:1'], { compatible: null, reason: 'no CUDA requirement', requirement: null })

    // A registry on loopback that is not running: the lookup is tried and fails with the reason.
    const absent = `127.0.0.1:${await freePort()}/nvidia/pytorch:24.01-py3`
    const some = JSON.parse(runCli(['check', '--json', '--config', file, '--image', 'test/cuda-legacy:11.7', '--image', absent]).stdout)
    t.equal(some.images.length, 2)
    t.match(some.images[0], { ref: 'test/cuda-legacy:11.7', compatible: true, source: 'local' })
    t.match(some.images[1], { ref: absent, id: null, requirement: null, compatible: null, reason: /^not present locally; registry lookup failed: registry 127\.0\.0\.1:\d+ unreachable/ })
    t.equal(runCli(['check', '--config', file, '--image', 'test/cuda-legacy:11.7']).code, 0, 'only compatible images asked: exit 0')

    const human = runCli(['check', '--config', file]).stdout
    t.match(human, /test\/cuda-legacy:12\.2 +INCOMPATIBLE +CUDA_VERSION not met/)
    t.match(human, /test\/plain:1 +no verdict +no CUDA requirement/)
  })
}

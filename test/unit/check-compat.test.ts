// An image's verdict on this host, from its config Env as NVIDIA's toolkit reads it and the GPU
// facts of real captures.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkImageCompat } from '../../src/compat/check.js'
import { cudaEnvFromList, imageRequirements, parseGoBool, semverMajorMinor } from '../../src/compat/image-requirements.js'
import { RequirementError } from '../../src/compat/requirement.js'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import type { GpuFacts } from '../../src/agent/snapshot.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

const capture = (name: string) => parseNvidiaSmiXml(readFileSync(join(FIXTURES, 'xml', name), 'utf8'))
const GT1030 = capture('geforce-gt-1030_driver-470.74_dtd-v11.xml') // GeForce, 470.74, CUDA 11.4
const A5000X2 = capture('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml') // 2 × NVIDIA RTX, 590.44.01, CUDA 13.1
const T4 = capture('tesla-t4_driver-515.105.01_dtd-v11.xml') // brand NVIDIA, 515.105.01, CUDA 11.7
const REQ_118 = 'cuda>=11.8 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471 brand=geforce,driver>=470,driver<471'

t.test('the env the toolkit reads', async (t) => {
  t.same(cudaEnvFromList(['PATH=/usr/bin', 'CUDA_VERSION=12.2.0', 'NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=470,driver<471', 'NVIDIA_DISABLE_REQUIRE', 'NVIDIA_VISIBLE_DEVICES=all']), {
    CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2 brand=tesla,driver>=470,driver<471', NVIDIA_DISABLE_REQUIRE: '',
  })
  t.same(cudaEnvFromList(null), {})
  t.same(imageRequirements({ CUDA_VERSION: '11.0.3' }).requirements, [{ source: 'CUDA_VERSION', expression: 'cuda>=11.0' }], 'legacy image')
  t.same(imageRequirements({ CUDA_VERSION: '12' }).requirements, [{ source: 'CUDA_VERSION', expression: 'cuda>=12.0' }])
  t.same(imageRequirements({ CUDA_VERSION: '11.0.3', NVIDIA_REQUIRE_CUDA: 'cuda>=11.0' }).requirements, [{ source: 'NVIDIA_REQUIRE_CUDA', expression: 'cuda>=11.0' }], 'not legacy with NVIDIA_REQUIRE_CUDA')
  t.same(imageRequirements({ CUDA_VERSION: '11.0.3', NVIDIA_REQUIRE_CUDA: '' }).requirements, [{ source: 'NVIDIA_REQUIRE_CUDA', expression: '' }, { source: 'CUDA_VERSION', expression: 'cuda>=11.0' }], 'an empty NVIDIA_REQUIRE_CUDA is legacy')
  t.same(imageRequirements({ NVIDIA_REQUIRE_CUDA: 'cuda>=12', NVIDIA_REQUIRE_ARCH: 'arch>=8.0', NVIDIA_REQUIRE_JETPACK: 'csv-mounts=all', NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS: '' }).requirements.map((r) => r.source), ['NVIDIA_REQUIRE_ARCH', 'NVIDIA_REQUIRE_CUDA'], 'JETPACK is not a requirement')
  t.throws(() => imageRequirements({ CUDA_VERSION: '11.04' }), RequirementError, 'leading zero is not semver')
  t.throws(() => imageRequirements({ CUDA_VERSION: 'eleven' }), RequirementError)
})

t.test('NVIDIA_DISABLE_REQUIRE is Go ParseBool', async (t) => {
  for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True']) t.equal(imageRequirements({ NVIDIA_DISABLE_REQUIRE: v, CUDA_VERSION: '12.0' }).disabled, true, v)
  for (const v of ['0', 'false', 'yes', 'on', '', 'tRUE']) t.equal(imageRequirements({ NVIDIA_DISABLE_REQUIRE: v, CUDA_VERSION: '12.0' }).disabled, false, JSON.stringify(v))
  t.equal(parseGoBool('F'), false)
  t.equal(parseGoBool('nope'), null)
})

t.test('semantic versions as the toolkit reads CUDA_VERSION', async (t) => {
  t.equal(semverMajorMinor('12.2.0'), '12.2')
  t.equal(semverMajorMinor('v12.2.0'), '12.2')
  t.equal(semverMajorMinor('12.2.0-rc1+build.5'), '12.2')
  t.equal(semverMajorMinor('10.0.130'), '10.0')
  for (const bad of ['12.2.0.1', '12.02', '12-rc1', '', 'vv12', '12.2.0-01']) t.equal(semverMajorMinor(bad), null, JSON.stringify(bad))
})

t.test('verdicts on real hosts', async (t) => {
  t.same(checkImageCompat({}, T4), { compatible: null, reason: 'no CUDA requirement', requirement: null }, 'no requirement is not "compatible"')
  t.equal(checkImageCompat(null, T4).compatible, null, 'not inspected yet')
  t.match(checkImageCompat({ CUDA_VERSION: '12.2.0', NVIDIA_DISABLE_REQUIRE: 'true' }, T4), { compatible: null, reason: /NVIDIA_DISABLE_REQUIRE/ })

  const legacy = checkImageCompat({ CUDA_VERSION: '11.7.1' }, T4)
  t.match(legacy, { compatible: true, requirement: 'cuda>=11.7', reason: /driver 515\.105\.01, CUDA 11\.7/ })
  t.match(checkImageCompat({ CUDA_VERSION: '11.8.0' }, T4), { compatible: false, requirement: 'cuda>=11.8', reason: /CUDA_VERSION not met on GPU 0 \(Tesla T4, brand nvidia\).*cuda>=11\.8 does not hold/ })
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: REQ_118 }, GT1030).compatible, true, 'GT 1030 on 470.74 runs 11.8 through the geforce 470 branch')
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=11.8 brand=tesla,driver>=470,driver<471' }, GT1030).compatible, false, 'but not without it')
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=13.1' }, A5000X2).compatible, true)
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=13.2' }, A5000X2).compatible, false)
  t.match(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=12.0', NVIDIA_REQUIRE_BRAND: 'brand=nvidiartx' }, A5000X2), { compatible: true, requirement: 'brand=nvidiartx; cuda>=12.0', reason: /all 2 GPUs/ })
})

t.test('every visible GPU must satisfy brand and arch', async (t) => {
  const mixed: GpuFacts = {
    ...A5000X2,
    gpus: [{ ...A5000X2.gpus[0], productBrand: 'Tesla', computeCapability: '8.0' }, { ...A5000X2.gpus[1], productBrand: 'GeForce', computeCapability: '8.6' }],
  }
  t.match(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'brand=tesla' }, mixed), { compatible: false, reason: /GPU 1 .*brand geforce/ })
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=8.0' }, mixed).compatible, true)
  t.match(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=8.6' }, mixed), { compatible: false, reason: /GPU 0/ })
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'brand=tesla' }, { ...mixed, gpus: [] }).compatible, true, 'no GPU visible: brand holds, as in the runtime')
})

t.test('malformed requirements and missing facts', async (t) => {
  t.match(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=99 driver=<470' }, T4), { compatible: false, reason: /invalid requirement expression.*unknown operator "=<"/ }, 'the runtime would refuse to start it')
  t.match(checkImageCompat({ CUDA_VERSION: '11.04' }, T4), { compatible: false, reason: /not a valid version/ })
  t.match(checkImageCompat({ CUDA_VERSION: '11.0.3' }, { available: false, reason: 'nvidia-smi not found', gpus: [] }), { compatible: null, requirement: 'cuda>=11.0', reason: /no GPU facts: nvidia-smi not found/ })
  const old: GpuFacts = { ...T4, cudaVersion: undefined }
  t.match(checkImageCompat({ CUDA_VERSION: '11.7.0' }, old), { compatible: true, reason: /CUDA 11\.7/ }, 'a driver that does not print its CUDA version: from the table')
})

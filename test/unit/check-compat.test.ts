// An image's verdict on this host, from its config Env as NVIDIA's toolkit reads it and the GPU
// facts of real captures.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkImageCompat } from '../../src/compat/check.js'
import {
  cudaEnvFromList,
  imageRequirements,
  parseGoBool,
  semverMajorMinor,
} from '../../src/compat/image-requirements.js'
import { RequirementError } from '../../src/compat/requirement.js'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { computeCapabilities, parseQueryGpuCsvWithHeader } from '../../src/gpu/query-csv.js'
import type { GpuFacts } from '../../src/core/snapshot.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

const capture = (name: string) => parseNvidiaSmiXml(readFileSync(join(FIXTURES, 'xml', name), 'utf8'))
const GT1030 = capture('geforce-gt-1030_driver-470.74_dtd-v11.xml') // GeForce, 470.74, CUDA 11.4
const A5000X2 = capture('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml') // 2 × NVIDIA RTX, 590.44.01, CUDA 13.1
const T4 = capture('tesla-t4_driver-515.105.01_dtd-v11.xml') // brand NVIDIA, 515.105.01, CUDA 11.7
const REQ_118 = [
  'cuda>=11.8',
  'brand=tesla,driver>=470,driver<471',
  'brand=unknown,driver>=470,driver<471',
  'brand=nvidia,driver>=470,driver<471',
  'brand=geforce,driver>=470,driver<471',
].join(' ')

t.test('the env the toolkit reads', async (t) => {
  t.same(
    cudaEnvFromList([
      'PATH=/usr/bin',
      'CUDA_VERSION=12.2.0',
      'NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=470,driver<471',
      'NVIDIA_DISABLE_REQUIRE',
      'NVIDIA_VISIBLE_DEVICES=all',
    ]),
    {
      CUDA_VERSION: '12.2.0',
      NVIDIA_REQUIRE_CUDA: 'cuda>=12.2 brand=tesla,driver>=470,driver<471',
      NVIDIA_DISABLE_REQUIRE: '',
    },
  )
  t.same(cudaEnvFromList(null), {})
  t.same(
    imageRequirements({ CUDA_VERSION: '11.0.3' }).requirements,
    [{ source: 'CUDA_VERSION', expression: 'cuda>=11.0' }],
    'legacy image',
  )
  t.same(imageRequirements({ CUDA_VERSION: '12' }).requirements, [{ source: 'CUDA_VERSION', expression: 'cuda>=12.0' }])
  t.same(
    imageRequirements({ CUDA_VERSION: '11.0.3', NVIDIA_REQUIRE_CUDA: 'cuda>=11.0' }).requirements,
    [{ source: 'NVIDIA_REQUIRE_CUDA', expression: 'cuda>=11.0' }],
    'not legacy with NVIDIA_REQUIRE_CUDA',
  )
  t.same(
    imageRequirements({ CUDA_VERSION: '11.0.3', NVIDIA_REQUIRE_CUDA: '' }).requirements,
    [
      { source: 'NVIDIA_REQUIRE_CUDA', expression: '' },
      { source: 'CUDA_VERSION', expression: 'cuda>=11.0' },
    ],
    'an empty NVIDIA_REQUIRE_CUDA is legacy',
  )
  t.same(
    imageRequirements({
      NVIDIA_REQUIRE_CUDA: 'cuda>=12',
      NVIDIA_REQUIRE_ARCH: 'arch>=8.0',
      NVIDIA_REQUIRE_JETPACK: 'csv-mounts=all',
      NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS: '',
    }).requirements.map((r) => r.source),
    ['NVIDIA_REQUIRE_ARCH', 'NVIDIA_REQUIRE_CUDA'],
    'JETPACK is not a requirement',
  )
  t.throws(() => imageRequirements({ CUDA_VERSION: '11.04' }), RequirementError, 'leading zero is not semver')
  t.throws(() => imageRequirements({ CUDA_VERSION: 'eleven' }), RequirementError)
})

t.test('NVIDIA_DISABLE_REQUIRE is Go ParseBool', async (t) => {
  for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True'])
    t.equal(imageRequirements({ NVIDIA_DISABLE_REQUIRE: v, CUDA_VERSION: '12.0' }).disabled, true, v)
  for (const v of ['0', 'false', 'yes', 'on', '', 'tRUE'])
    t.equal(imageRequirements({ NVIDIA_DISABLE_REQUIRE: v, CUDA_VERSION: '12.0' }).disabled, false, JSON.stringify(v))
  t.equal(parseGoBool('F'), false)
  t.equal(parseGoBool('nope'), null)
})

t.test('semantic versions as the toolkit reads CUDA_VERSION', async (t) => {
  t.equal(semverMajorMinor('12.2.0'), '12.2')
  t.equal(semverMajorMinor('v12.2.0'), '12.2')
  t.equal(semverMajorMinor('12.2.0-rc1+build.5'), '12.2')
  t.equal(semverMajorMinor('10.0.130'), '10.0')
  for (const bad of ['12.2.0.1', '12.02', '12-rc1', '', 'vv12', '12.2.0-01'])
    t.equal(semverMajorMinor(bad), null, JSON.stringify(bad))
})

t.test('verdicts on real hosts', async (t) => {
  t.same(
    checkImageCompat({}, T4),
    {
      compatible: null,
      reason: 'no CUDA requirement',
      requirement: null,
      kernels: 'unknown',
      kernelsReason: 'the image declares no TORCH_CUDA_ARCH_LIST',
    },
    'no requirement is not "compatible"',
  )
  t.equal(checkImageCompat(null, T4).compatible, null, 'not inspected yet')
  t.match(checkImageCompat({ CUDA_VERSION: '12.2.0', NVIDIA_DISABLE_REQUIRE: 'true' }, T4), {
    compatible: null,
    reason: /NVIDIA_DISABLE_REQUIRE/,
  })

  const legacy = checkImageCompat({ CUDA_VERSION: '11.7.1' }, T4)
  t.match(legacy, { compatible: true, requirement: 'cuda>=11.7', reason: /driver 515\.105\.01, CUDA 11\.7/ })
  t.match(checkImageCompat({ CUDA_VERSION: '11.8.0' }, T4), {
    compatible: false,
    requirement: 'cuda>=11.8',
    reason: /CUDA_VERSION not met on GPU 0 \(Tesla T4, brand nvidia\).*cuda>=11\.8 does not hold/,
  })
  t.equal(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: REQ_118 }, GT1030).compatible,
    true,
    'GT 1030 on 470.74 runs 11.8 through the geforce 470 branch',
  )
  t.equal(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=11.8 brand=tesla,driver>=470,driver<471' }, GT1030).compatible,
    false,
    'but not without it',
  )
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=13.1' }, A5000X2).compatible, true)
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=13.2' }, A5000X2).compatible, false)
  t.match(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=12.0', NVIDIA_REQUIRE_BRAND: 'brand=nvidiartx' }, A5000X2), {
    compatible: true,
    requirement: 'brand=nvidiartx; cuda>=12.0',
    reason: /all 2 GPUs/,
  })
})

t.test('every visible GPU must satisfy brand and arch', async (t) => {
  const mixed: GpuFacts = {
    ...A5000X2,
    gpus: [
      { ...A5000X2.gpus[0], productBrand: 'Tesla', computeCapability: '8.0' },
      { ...A5000X2.gpus[1], productBrand: 'GeForce', computeCapability: '8.6' },
    ],
  }
  t.match(checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'brand=tesla' }, mixed), {
    compatible: false,
    reason: /GPU 1 .*brand geforce/,
  })
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=8.0' }, mixed).compatible, true)
  t.match(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=8.6' }, mixed), { compatible: false, reason: /GPU 0/ })
  t.equal(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'brand=tesla' }, { ...mixed, gpus: [] }).compatible,
    true,
    'no GPU visible: brand holds, as in the runtime',
  )
})

t.test('malformed requirements and missing facts', async (t) => {
  t.match(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=99 driver=<470' }, T4),
    { compatible: false, reason: /invalid requirement expression.*unknown operator "=<"/ },
    'the runtime would refuse to start it',
  )
  t.match(checkImageCompat({ CUDA_VERSION: '11.04' }, T4), { compatible: false, reason: /not a valid version/ })
  t.match(
    checkImageCompat({ CUDA_VERSION: '11.0.3' }, { available: false, reason: 'nvidia-smi not found', gpus: [] }),
    { compatible: null, requirement: 'cuda>=11.0', reason: /no GPU facts: nvidia-smi not found/ },
  )
  const old: GpuFacts = { ...T4, cudaVersion: undefined }
  t.match(
    checkImageCompat({ CUDA_VERSION: '11.7.0' }, old),
    { compatible: true, reason: /CUDA 11\.7/ },
    'a driver that does not print its CUDA version: from the table',
  )
})

/** a capture with the compute capabilities of its --query-gpu answer (test/fixtures/nvidia-smi/csv/derived) */
function withCaps(facts: GpuFacts, csv: string): GpuFacts {
  const caps = computeCapabilities(parseQueryGpuCsvWithHeader(readFileSync(join(FIXTURES, 'csv/derived', csv), 'utf8')))
  return { ...facts, gpus: facts.gpus.map((g) => ({ ...g, computeCapability: caps.get(g.uuid) })) }
}

t.test('arch is decided by the compute capability from --query-gpu, unknown without it', async (t) => {
  const a100xml = capture('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml')
  const a100 = withCaps(a100xml, 'a100-sxm4-80gb_driver-535.54.03_uuid-compute_cap.csv')
  t.match(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=9.0' }, a100), {
    compatible: false,
    reason: /compute capability 8\.0.*arch>=9\.0 does not hold/,
  })
  t.equal(checkImageCompat({ NVIDIA_REQUIRE_ARCH: 'arch>=8.0' }, a100).compatible, true)
  t.equal(a100xml.gpus[0].computeCapability, undefined, 'no -q -x document carries it')
  const unknown = checkImageCompat(
    { NVIDIA_REQUIRE_ARCH: 'arch>=9.0' },
    { ...a100xml, computeCapabilityUnknown: 'compute capability unknown: old nvidia-smi' },
  )
  t.match(unknown, {
    compatible: null,
    unknown: [/NVIDIA_REQUIRE_ARCH on GPU 0 .*arch>=9\.0 \(the GPU's compute capability is unknown\)/],
    reason: /cannot tell.*\(compute capability unknown: old nvidia-smi\)/,
  })
  t.equal(
    checkImageCompat({ CUDA_VERSION: '12.2.0' }, a100xml).compatible,
    true,
    'a requirement without arch does not care',
  )
})

t.test('a driver that prints no CUDA version: the table back to CUDA 7.0, unknown before it', async (t) => {
  // The 390.25 host of text/geforce-gtx-1080-ti_x8_driver-390.25_no-cuda-version.txt (no CUDA Version in its header).
  const gtx1080ti = {
    index: 0,
    uuid: 'GPU-0',
    name: 'GeForce GTX 108...',
    productBrand: 'GeForce',
    computeCapability: '6.1',
    migDevices: [],
  }
  const host390: GpuFacts = { available: true, driverVersion: '390.25', gpus: [gtx1080ti] }
  t.match(checkImageCompat({ CUDA_VERSION: '12.4.1' }, host390), {
    compatible: false,
    reason: /driver 390\.25, CUDA 9\.0.*cuda>=12\.4 does not hold/,
  })
  t.equal(checkImageCompat({ CUDA_VERSION: '9.0.176' }, host390).compatible, true)
  const host340: GpuFacts = { ...host390, driverVersion: '340.108' }
  t.match(checkImageCompat({ CUDA_VERSION: '12.4.1' }, host340), {
    compatible: null,
    unknown: [/cuda>=12\.4 \(the driver's CUDA version is unknown\)/],
    reason: /driver 340\.108, CUDA unknown/,
  })
  t.equal(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=12.4 brand=geforce,driver>=300' }, host340).compatible,
    true,
    'another alternative holds either way',
  )
  t.equal(
    checkImageCompat({ NVIDIA_REQUIRE_CUDA: 'cuda>=12.4', NVIDIA_REQUIRE_DRIVER: 'driver>=400' }, host340).compatible,
    false,
    'a known failure still decides',
  )
})

t.test('kernel coverage beside the verdict, from TORCH_CUDA_ARCH_LIST and the compute capabilities', async (t) => {
  const a100 = withCaps(
    capture('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml'),
    'a100-sxm4-80gb_driver-535.54.03_uuid-compute_cap.csv',
  )
  const missing = checkImageCompat({ CUDA_VERSION: '12.1.0', TORCH_CUDA_ARCH_LIST: '7.0 7.5' }, a100)
  t.match(missing, {
    compatible: true,
    kernels: 'missing',
    kernelsMissingOnEveryGpu: true,
    kernelsReason: /"7\.0 7\.5" has no kernel .*GPU 0 .*compute capability 8\.0/,
  })
  t.match(checkImageCompat({ CUDA_VERSION: '12.1.0', TORCH_CUDA_ARCH_LIST: '7.0 7.5+PTX' }, a100), {
    compatible: true,
    kernels: 'ok',
  })
  t.match(
    checkImageCompat(
      { TORCH_CUDA_ARCH_LIST: '8.0' },
      { ...a100, computeCapabilityUnknown: 'compute capability unknown: x' },
    ),
    { kernels: 'ok' },
  )
  const noCap = capture('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml')
  t.match(
    checkImageCompat(
      { TORCH_CUDA_ARCH_LIST: '8.0' },
      { ...noCap, computeCapabilityUnknown: 'compute capability unknown: old' },
    ),
    {
      kernels: 'unknown',
      kernelsReason: /compute capability of GPU 0 .* is unknown \(compute capability unknown: old\)/,
    },
  )
  t.match(
    checkImageCompat({ TORCH_CUDA_ARCH_LIST: '8.0' }, { available: false, reason: 'nvidia-smi not found', gpus: [] }),
    { kernels: 'unknown', kernelsReason: /no GPU facts/ },
  )
  t.same(cudaEnvFromList(['TORCH_CUDA_ARCH_LIST=8.0 9.0+PTX', 'PYTORCH_VERSION=2.4']), {
    TORCH_CUDA_ARCH_LIST: '8.0 9.0+PTX',
  })
})

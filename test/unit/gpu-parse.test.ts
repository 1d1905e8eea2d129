// The nvidia-smi XML parser on every real capture in test/fixtures/nvidia-smi/xml (see SOURCES.md).
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { NvidiaSmiParseError, parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { brandToken } from '../../src/compat/brand.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

const XML = join(FIXTURES, 'xml')
const MiB = 1024 * 1024
const read = (name: string) => readFileSync(join(XML, name), 'utf8')

interface Expected {
  driver: string
  cuda: string
  names: string[]
  brands: string[]
  tokens: string[]
  uuids?: string[]
  memTotalMiB: number[]
  memUsedMiB: number[]
  mig: (string | undefined)[]
  migDevices: number[]
  util?: (number | undefined)[]
  temp?: (number | undefined)[]
  power?: (number | undefined)[]
}

const EXPECTED: Record<string, Expected> = {
  'a100-sxm4-40gb_mig-enabled_driver-510.47.03_dtd-v11.xml': {
    driver: '510.47.03',
    cuda: '11.6',
    names: ['NVIDIA A100-SXM4-40GB'],
    brands: ['NVIDIA'],
    tokens: ['nvidia'],
    uuids: ['GPU-27b94a00-ed54-5c24-b1fd-1054085de32a'],
    memTotalMiB: [40960],
    memUsedMiB: [38],
    mig: ['Enabled'],
    migDevices: [2],
    util: [undefined],
    temp: [36],
    power: [66.92],
  },
  'a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml': {
    driver: '535.54.03',
    cuda: '12.2',
    names: ['NVIDIA A100-SXM4-80GB'],
    brands: ['NVIDIA'],
    tokens: ['nvidia'],
    uuids: ['GPU-513536b6-7d19-9063-b049-1e69664bb298'],
    memTotalMiB: [81920],
    memUsedMiB: [50],
    mig: ['Enabled'],
    migDevices: [4],
    util: [undefined],
    temp: [27],
    power: [67.03],
  },
  'geforce-gt-1030_driver-470.74_dtd-v11.xml': {
    driver: '470.74',
    cuda: '11.4',
    names: ['NVIDIA GeForce GT 1030'],
    brands: ['GeForce'],
    tokens: ['geforce'],
    memTotalMiB: [1998],
    memUsedMiB: [875],
    mig: [undefined],
    migDevices: [0],
    util: [0],
    temp: [36],
    power: [undefined],
  },
  'geforce-rtx-2080_windows_driver-516.59_dtd-v11.xml': {
    driver: '516.59',
    cuda: '11.7',
    names: ['NVIDIA GeForce RTX 2080'],
    brands: ['GeForce'],
    tokens: ['geforce'],
    memTotalMiB: [8192],
    memUsedMiB: [862],
    mig: [undefined],
    migDevices: [0],
    util: [0.02],
    temp: [29],
    power: [14.5],
  },
  'geforce-rtx-3080_driver-595.58.03_dtd-v13.xml': {
    driver: '595.58.03',
    cuda: '13.2',
    names: ['NVIDIA GeForce RTX 3080'],
    brands: ['GeForce'],
    tokens: ['geforce'],
    memTotalMiB: [10240],
    memUsedMiB: [9184],
    mig: [undefined],
    migDevices: [0],
    util: [0.65],
    temp: [27],
    power: [142.33],
  },
  'geforce-rtx-4090_driver-535.86.05_dtd-v12.xml': {
    driver: '535.86.05',
    cuda: '12.2',
    names: ['NVIDIA GeForce RTX 4090'],
    brands: ['GeForce'],
    tokens: ['geforce'],
    memTotalMiB: [24564],
    memUsedMiB: [2],
    mig: [undefined],
    migDevices: [0],
    util: [0],
    temp: [40],
    power: [26.84],
  },
  'grid-p4-1q-vgpu_windows-guest_driver-513.46_dtd-v11.xml': {
    driver: '513.46',
    cuda: '11.6',
    names: ['GRID P4-1Q'],
    brands: ['NVIDIA RTX Virtual Workstation'],
    tokens: ['vws'],
    memTotalMiB: [1024],
    memUsedMiB: [807],
    mig: [undefined],
    migDevices: [0],
    util: [0],
    power: [undefined],
  },
  'quadro-p400_driver-418.43_no-doctype.xml': {
    driver: '418.43',
    cuda: '10.1',
    names: ['Quadro P400'],
    brands: ['Quadro'],
    tokens: ['quadro'],
    memTotalMiB: [1998],
    memUsedMiB: [0],
    mig: [undefined],
    migDevices: [0],
    util: [0],
    temp: [33],
    power: [undefined],
  },
  'rtx-a5000_x2_driver-590.44.01_dtd-v13.xml': {
    driver: '590.44.01',
    cuda: '13.1',
    names: ['NVIDIA RTX A5000', 'NVIDIA RTX A5000'],
    brands: ['NVIDIA RTX', 'NVIDIA RTX'],
    tokens: ['nvidiartx', 'nvidiartx'],
    uuids: ['GPU-12345678-aaaa-bbbb-cccc-0123456789ab', 'GPU-12345678-aaaa-bbbb-cccc-0123456789cd'],
    memTotalMiB: [24564, 24564],
    memUsedMiB: [22437, 17253],
    mig: [undefined, undefined],
    migDevices: [0, 0],
    util: [0, 0],
    temp: [13, 15],
    power: [6.52, 13.59],
  },
  'tesla-t4_driver-515.105.01_dtd-v11.xml': {
    driver: '515.105.01',
    cuda: '11.7',
    names: ['Tesla T4'],
    brands: ['NVIDIA'],
    tokens: ['nvidia'],
    uuids: ['GPU-d37e67a5-91dd-3774-a5cb-99096249601a'],
    memTotalMiB: [15360],
    memUsedMiB: [1032],
    mig: [undefined],
    migDevices: [0],
    util: [0],
    temp: [40],
    power: [26.78],
  },
}

t.test('every capture in the fixtures has expectations', async (t) => {
  t.same(
    readdirSync(XML)
      .filter((f) => f.endsWith('.xml'))
      .sort(),
    Object.keys(EXPECTED).sort(),
  )
})

for (const [file, e] of Object.entries(EXPECTED)) {
  t.test(file, async (t) => {
    const facts = parseNvidiaSmiXml(read(file))
    t.equal(facts.available, true)
    t.equal(facts.driverVersion, e.driver, 'driver version')
    t.equal(facts.cudaVersion, e.cuda, 'CUDA version')
    t.equal(facts.gpus.length, e.names.length, 'GPU count')
    t.same(
      facts.gpus.map((g) => g.index),
      e.names.map((_, i) => i),
      'indexes in nvidia-smi order',
    )
    t.same(
      facts.gpus.map((g) => g.name),
      e.names,
      'names',
    )
    t.same(
      facts.gpus.map((g) => g.productBrand),
      e.brands,
      'product brands',
    )
    t.same(
      facts.gpus.map((g) => brandToken(g.productBrand)),
      e.tokens,
      "NVIDIA's brand tokens",
    )
    if (e.uuids)
      t.same(
        facts.gpus.map((g) => g.uuid),
        e.uuids,
        'uuids',
      )
    for (const g of facts.gpus) t.match(g.uuid, /^GPU-[0-9a-f-]{36}$/, `GPU ${g.index} uuid`)
    t.same(
      facts.gpus.map((g) => g.memoryTotalBytes),
      e.memTotalMiB.map((m) => m * MiB),
      'memory total in bytes',
    )
    t.same(
      facts.gpus.map((g) => g.memoryUsedBytes),
      e.memUsedMiB.map((m) => m * MiB),
      'memory used in bytes',
    )
    t.same(
      facts.gpus.map((g) => g.migMode),
      e.mig,
      'MIG mode (absent where nvidia-smi says N/A)',
    )
    t.same(
      facts.gpus.map((g) => g.migDevices.length),
      e.migDevices,
      'MIG devices',
    )
    if (e.util)
      t.same(
        facts.gpus.map((g) => g.utilizationRatio),
        e.util,
        'utilization as a ratio',
      )
    if (e.temp)
      t.same(
        facts.gpus.map((g) => g.temperatureCelsius),
        e.temp,
        'temperature',
      )
    if (e.power)
      t.same(
        facts.gpus.map((g) => g.powerDrawWatts),
        e.power,
        'power draw',
      )
    for (const g of facts.gpus) {
      for (const [k, v] of Object.entries(g)) t.not(v, null, `GPU ${g.index} ${k} is never null`)
      if (g.utilizationRatio !== undefined) t.ok(g.utilizationRatio >= 0 && g.utilizationRatio <= 1, 'ratio in 0..1')
    }
  })
}

t.test('MIG devices carry their instance ids and memory', async (t) => {
  const facts = parseNvidiaSmiXml(read('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml'))
  t.same(
    facts.gpus[0].migDevices.map((m) => [m.index, m.gpuInstanceId, m.computeInstanceId]),
    [
      [0, 3, 0],
      [1, 4, 0],
      [2, 5, 0],
      [3, 6, 0],
    ],
  )
  t.same(
    facts.gpus[0].migDevices.map((m) => m.memoryTotalBytes),
    [19968, 19968, 19968, 19968].map((m) => m * MiB),
  )
  t.same(
    facts.gpus[0].migDevices.map((m) => m.memoryUsedBytes),
    [12, 12, 12, 12].map((m) => m * MiB),
  )
})

t.test('attached_gpus says 4 but one <gpu> is there: the GPUs present are what counts', async (t) => {
  const xml = read('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml')
  t.match(xml, /<attached_gpus>4<\/attached_gpus>/)
  t.equal(parseNvidiaSmiXml(xml).gpus.length, 1)
})

t.test('"Requested functionality has been deprecated" is absent, not an error (R590 power_state)', async (t) => {
  const xml = read('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml')
  t.match(xml, /<power_state>Requested functionality has been deprecated<\/power_state>/)
  t.equal(parseNvidiaSmiXml(xml).gpus[0].powerDrawWatts, 6.52, 'the power draw next to it still reads')
})

// Derived from the real 590.44.01 capture: R610 prints <kmd_version> and marks <driver_version>
// deprecated (as its --version and CSV captures show); the rest of the document is unchanged.
t.test('R610+: KMD Version instead of a deprecated Driver Version', async (t) => {
  const real = read('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml')
  const r610 = real
    .replace(
      /<driver_version>590\.44\.01<\/driver_version>/,
      '<driver_version>Deprecated, see "KMD version" instead</driver_version>\n\t<kmd_version>610.57.04</kmd_version>',
    )
    .replace(
      /<cuda_version>13\.1<\/cuda_version>/,
      '<cuda_version>Deprecated, see "CUDA UMD version" instead</cuda_version>\n\t' +
        '<cuda_umd_version>13.3</cuda_umd_version>',
    )
  t.not(r610, real, 'the derived document differs')
  const facts = parseNvidiaSmiXml(r610)
  t.equal(facts.driverVersion, '610.57.04')
  t.equal(facts.cudaVersion, '13.3')
  t.equal(facts.gpus.length, 2)
  const both = parseNvidiaSmiXml(
    real.replace(
      '<driver_version>590.44.01</driver_version>',
      '<driver_version>590.44.01</driver_version><kmd_version>590.44.01</kmd_version>',
    ),
  )
  t.equal(both.driverVersion, '590.44.01', 'both present and equal')
})

t.test('fields nvidia-smi cannot read are absent, in every spelling', async (t) => {
  const base = read('tesla-t4_driver-515.105.01_dtd-v11.xml')
  for (const na of [
    'N/A',
    '[N/A]',
    '[Not Supported]',
    'Not Supported',
    '[Unknown Error]',
    'Requested functionality has been deprecated',
    '[Insufficient Permissions]',
    '[GPU requires reset]',
  ]) {
    const xml = base
      .replace('<gpu_temp>40 C</gpu_temp>', `<gpu_temp>${na}</gpu_temp>`)
      .replace('<power_draw>26.78 W</power_draw>', `<power_draw>${na}</power_draw>`)
      .replace('<gpu_util>0 %</gpu_util>', `<gpu_util>${na}</gpu_util>`)
      .replace('<used>1032 MiB</used>', `<used>${na}</used>`)
      .replace('<product_brand>NVIDIA</product_brand>', `<product_brand>${na}</product_brand>`)
    const g = parseNvidiaSmiXml(xml).gpus[0]
    t.equal(g.temperatureCelsius, undefined, `temperature ${na}`)
    t.equal(g.powerDrawWatts, undefined, `power ${na}`)
    t.equal(g.utilizationRatio, undefined, `utilization ${na}`)
    t.equal(g.memoryUsedBytes, undefined, `memory used ${na}`)
    t.equal(g.productBrand, undefined, `brand ${na}`)
    t.equal(g.memoryTotalBytes, 15360 * MiB, 'other fields still read')
  }
})

t.test('what is not nvidia-smi XML is a clear error, never a crash', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /no <nvidia_smi_log>|not valid XML/],
    [
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
      /not valid XML|no <nvidia_smi_log>/,
    ],
    ['<nvidia_smi_log><gpu id="0"><product_name>x</gpu></nvidia_smi_log>', /not valid XML/],
    ['<?xml version="1.0" ?><other/>', /no <nvidia_smi_log>/],
    [read('tesla-t4_driver-515.105.01_dtd-v11.xml').slice(0, 5000), /not valid XML/],
  ]
  for (const [input, message] of cases) {
    t.throws(() => parseNvidiaSmiXml(input), NvidiaSmiParseError, JSON.stringify(input.slice(0, 40)))
    try {
      parseNvidiaSmiXml(input)
    } catch (err) {
      t.match((err as Error).message, message)
    }
  }
  t.same(
    parseNvidiaSmiXml('<nvidia_smi_log><driver_version>N/A</driver_version></nvidia_smi_log>'),
    { available: true, driverVersion: undefined, cudaVersion: undefined, gpus: [] },
    'an empty log is no GPUs, not an error',
  )
})

// Node Feature Discovery labels built from every real nvidia-smi capture: each key and value obeys
// Kubernetes' label rules, and the driver, CUDA, GPU and image labels say what the capture says.
import t, { type Test } from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { computeCapabilities, parseQueryGpuCsvWithHeader } from '../../src/gpu/query-csv.js'
import { buildNfdLabels, imageLabelId, labelValue, renderNfdFile } from '../../src/kubernetes/nfd-labels.js'
import { labelKeyProblem, labelValueProblem } from '../../src/labels.js'
import { FIXTURES } from '../harness/nvidia-smi.js'
import { imageFactsAt } from '../support/image-facts.js'
import type { GpuFacts } from '../../src/core/snapshot.js'

const XML = join(FIXTURES, 'xml')
const LONG_REFS = [
  'nvcr.io/nvidia/pytorch:24.05-py3',
  'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime',
  'registry.example.com:5000/team/very/deep/path/with-a-long-name/model-server@sha256:' + 'a'.repeat(64),
]

function assertValidLabels(t: Test, labels: Record<string, string>) {
  for (const [key, value] of Object.entries(labels)) {
    t.equal(labelKeyProblem(key), null, `key ${key}`)
    t.equal(labelValueProblem(value), null, `${key}=${value}`)
    t.not(value, '', `${key} has a value`)
  }
}

function gpuFrom(xml: string): GpuFacts {
  const facts = parseNvidiaSmiXml(readFileSync(join(XML, xml), 'utf8'))
  const derived = join(FIXTURES, 'csv', 'derived')
  const csv = readdirSync(derived).find((f) => f.startsWith(xml.split('_')[0]) && f.includes('compute_cap'))
  if (csv) {
    const caps = computeCapabilities(parseQueryGpuCsvWithHeader(readFileSync(join(derived, csv), 'utf8')))
    for (const g of facts.gpus) g.computeCapability ??= caps.get(g.uuid)
  }
  return facts
}

for (const xml of readdirSync(XML).filter((f) => f.endsWith('.xml'))) {
  t.test(`labels from ${xml}`, async (t) => {
    const gpu = gpuFrom(xml)
    const built = buildNfdLabels({ prefix: 'gpuhost.io', gpu, wanted: LONG_REFS, images: [] })
    assertValidLabels(t, built.labels)
    const l = built.labels
    t.equal(l['gpuhost.io/driver.version'], gpu.driverVersion)
    t.equal(l['gpuhost.io/driver.major'], gpu.driverVersion!.split('.')[0])
    t.equal(l['gpuhost.io/gpu.count'], String(gpu.gpus.length))
    t.ok(l['gpuhost.io/gpu.product'], 'a product')
    t.match(l['gpuhost.io/cuda.max'], /^\d+\.\d+$/)
    t.match(l['gpuhost.io/health'], /^(ok|degraded|failed)$/)
    for (const g of gpu.gpus)
      if (g.computeCapability) t.equal(l[`gpuhost.io/compute.${g.computeCapability}`], 'true', g.computeCapability)
    t.equal(built.images.length, LONG_REFS.length)
    for (const ref of LONG_REFS) {
      const id = imageLabelId(ref)
      t.equal(l[`gpuhost.io/image.${id}.present`], 'false')
      t.equal(l[`gpuhost.io/image.${id}.compatible`], 'unknown')
    }
  })
}

t.test('the dual A5000 capture: exact labels', async (t) => {
  const built = buildNfdLabels({
    prefix: 'gpuhost.io',
    gpu: gpuFrom('rtx-a5000_x2_driver-590.44.01_dtd-v13.xml'),
    wanted: [],
    images: [],
  })
  t.same(built.labels, {
    'gpuhost.io/gpu.available': 'true',
    'gpuhost.io/driver.version': '590.44.01',
    'gpuhost.io/driver.major': '590',
    'gpuhost.io/cuda.max': '13.1',
    'gpuhost.io/cuda.max.major': '13',
    'gpuhost.io/gpu.count': '2',
    'gpuhost.io/gpu.product': 'NVIDIA-RTX-A5000',
    'gpuhost.io/compute.8.6': 'true',
    'gpuhost.io/compute.major.min': '8',
    'gpuhost.io/health': 'ok',
  })
})

t.test('a wanted image present, with its verdict; the same image named two ways is one entry', async (t) => {
  const gpu = gpuFrom('tesla-t4_driver-515.105.01_dtd-v11.xml')
  const present = imageFactsAt(new Date())({
    id: 'sha256:1',
    repoTags: ['pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime'],
    compat: { compatible: false, reason: 'needs cuda>=12.1', requirement: 'cuda>=12.1', kernels: 'ok' },
  })
  const built = buildNfdLabels({
    prefix: 'gpuhost.io',
    gpu,
    wanted: [
      'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime',
      'docker.io/pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime',
    ],
    images: [present],
  })
  const id = imageLabelId('pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime')
  t.equal(id, imageLabelId('docker.io/pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime'))
  t.same(built.images, [{ ref: 'docker.io/pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', id }])
  t.equal(built.labels[`gpuhost.io/image.${id}.present`], 'true')
  t.equal(built.labels[`gpuhost.io/image.${id}.compatible`], 'false')
  t.equal(built.labels[`gpuhost.io/image.${id}.kernels`], 'ok')
  const text = renderNfdFile(built)
  t.match(text, `# image ${id} docker.io/pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime\n`)
  t.match(text, `gpuhost.io/image.${id}.compatible=false\n`)
})

t.test('the documented id: the first 16 hex digits of sha256 of the qualified reference', async (t) => {
  // printf %s docker.io/library/ubuntu:24.04 | sha256sum | cut -c1-16
  t.equal(imageLabelId('ubuntu:24.04'), 'eaaca2df1c1ccb99')
})

t.test('no GPU facts: only availability and health; images before the first collection are unknown', async (t) => {
  const built = buildNfdLabels({
    prefix: 'example.com',
    gpu: { available: false, reason: 'nvidia-smi: not found', gpus: [] },
    wanted: ['ubuntu:24.04'],
    images: null,
  })
  assertValidLabels(t, built.labels)
  const id = imageLabelId('ubuntu:24.04')
  t.same(built.labels, {
    'example.com/gpu.available': 'false',
    'example.com/health': 'ok',
    [`example.com/image.${id}.present`]: 'unknown',
    [`example.com/image.${id}.compatible`]: 'unknown',
    [`example.com/image.${id}.kernels`]: 'unknown',
  })
})

t.test('label values are cut to the alphabet and 63 characters', async (t) => {
  t.equal(labelValue('NVIDIA GeForce RTX 4090 (laptop)'), 'NVIDIA-GeForce-RTX-4090-laptop')
  const long = labelValue('x'.repeat(70) + ' tail')
  t.equal(long.length, 63)
  t.equal(labelValueProblem(labelValue('-- odd / name --')), null)
})

t.test('a reference with a line break cannot write a label line of its own', async (t) => {
  const text = renderNfdFile({
    labels: { 'gpuhost.io/gpu.count': '1' },
    images: [{ id: '0123456789abcdef', ref: 'x\ngpuhost.io/gpu.available=true' }],
  })
  t.same(
    text.split('\n').filter((l) => l && !l.startsWith('#')),
    ['gpuhost.io/gpu.count=1'],
  )
})

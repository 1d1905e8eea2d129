// The agent keeps a Node Feature Discovery features.d file with the stand-in nvidia-smi: the
// labels of the capture appear, every line obeys Kubernetes' label rules, and a driver change on
// the host is written again.
import t from 'tap'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startAgent, testDir } from '../harness/agent.js'
import { FIXTURES, fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { waitFor } from '../harness/ports.js'
import { labelKeyProblem, labelValueProblem } from '../../src/labels.js'
import { imageLabelId } from '../../src/kubernetes/nfd-labels.js'

function readLabels(file: string): Record<string, string> | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return null
  }
  const labels: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    labels[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return labels
}

t.test('the features file follows the host', async (t) => {
  const dir = testDir(t, 'gh-nfd-')
  // the stand-in reads this copy on every run: overwriting it is a driver upgrade on the host
  const capture = join(dir.path, 'capture.xml')
  copyFileSync(join(FIXTURES, 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml'), capture)
  const nvidiaSmi = fakeNvidiaSmi(t, {
    fixture: capture,
    queryGpu: 'csv/derived/rtx-a5000_x2_driver-590.44.01_uuid-compute_cap.csv',
  })
  const file = join(dir.path, 'features.d', 'gpuhost')
  const image = 'nvcr.io/nvidia/pytorch:24.05-py3'
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi, timeoutSeconds: 5, intervalSeconds: 1 },
    prewarm: { images: [image], schedule: null },
    kubernetes: { nfdFeaturesFile: file },
  })
  await waitFor('the A5000 labels', () => readLabels(file)?.['gpuhost.io/driver.version'] === '590.44.01', 60_000, 100)
  const labels = readLabels(file)!
  for (const [key, value] of Object.entries(labels)) {
    t.equal(labelKeyProblem(key), null, key)
    t.equal(labelValueProblem(value), null, `${key}=${value}`)
  }
  t.match(labels, {
    'gpuhost.io/driver.major': '590',
    'gpuhost.io/cuda.max': '13.1',
    'gpuhost.io/gpu.count': '2',
    'gpuhost.io/gpu.product': 'NVIDIA-RTX-A5000',
    'gpuhost.io/compute.8.6': 'true',
    'gpuhost.io/health': 'ok',
  })
  const id = imageLabelId(image)
  // Docker is unreachable here: whether the image is present is not known, and not guessed
  t.equal(labels[`gpuhost.io/image.${id}.present`], 'unknown')
  t.equal(labels[`gpuhost.io/image.${id}.compatible`], 'unknown')
  t.match(readFileSync(file, 'utf8'), `# image ${id} ${image}\n`)

  copyFileSync(join(FIXTURES, 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml'), capture)
  await waitFor('the T4 labels', () => readLabels(file)?.['gpuhost.io/driver.major'] === '515', 60_000, 100)
  const after = readLabels(file)!
  t.equal(after['gpuhost.io/gpu.count'], '1')
  t.equal(after['gpuhost.io/gpu.product'], 'Tesla-T4')
  t.notOk('gpuhost.io/compute.8.6' in after, 'the A5000 capability is gone')
  t.equal((await agent.stop()).code, 0)
})

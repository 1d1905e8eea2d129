// `nvidia-smi --query-gpu … --format=csv` read from real captures (test/fixtures/nvidia-smi/csv and
// ../shared/fixtures when present): the fields asked, in their order; absent values; bad rows.
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  COMPUTE_CAP_FIELDS,
  computeCapabilities,
  headerFields,
  parseQueryGpuCsv,
  parseQueryGpuCsvWithHeader,
  queryGpuArgs,
} from '../../src/gpu/query-csv.js'
import { NvidiaSmiParseError } from '../../src/gpu/parse.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

const SHARED = resolve(FIXTURES, '../../../../shared/fixtures/nvidia-smi/csv')
const dirs = [join(FIXTURES, 'csv'), ...(existsSync(SHARED) ? [SHARED] : [])]

/** what each real capture says: compute_cap where the driver's nvidia-smi has the field */
const EXPECTED: Record<string, { uuid: string; computeCap: string | undefined }> = {
  'geforce-rtx-2080-super_driver-610.57.04_query-gpu-all-fields_kmd_version.csv': {
    uuid: 'GPU-00000000-0000-0000-0000-000000000000',
    computeCap: '7.5',
  },
  'h100-80gb-hbm3_mig-enabled_driver-590.48.01_query-gpu-all-fields.csv': {
    uuid: 'GPU-00000000-0000-0000-0000-000000000000',
    computeCap: '9.0',
  },
  'geforce-rtx-2080-super_windows_driver-471.11_query-gpu.csv': {
    uuid: 'GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa',
    computeCap: undefined,
  },
  'tesla-p100-pcie-16gb_query-gpu_with-header.csv': {
    uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6',
    computeCap: undefined,
  },
}

t.test('the args ask for the fields in order, without a header', async (t) => {
  t.same(queryGpuArgs(COMPUTE_CAP_FIELDS), ['--query-gpu=uuid,compute_cap', '--format=csv,noheader'])
})

for (const dir of dirs) {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.csv'))) {
    t.test(`${dir.includes('shared') ? 'shared' : 'local'} capture ${file}`, async (t) => {
      const expected = EXPECTED[file]
      t.ok(expected, 'every capture has expectations')
      const csv = readFileSync(join(dir, file), 'utf8')
      const rows = parseQueryGpuCsvWithHeader(csv)
      t.equal(rows.length, 1)
      t.equal(rows[0].uuid, expected.uuid)
      t.equal(rows[0].compute_cap, expected.computeCap)
      // The same row as a noheader answer to the fields in another order, as the collector reads it.
      const [header, line] = csv.split('\n')
      const names = headerFields(header)
      const cells = line.split(',').map((c) => c.trim())
      const asked = names.includes('compute_cap') ? ['compute_cap', 'uuid'] : ['uuid']
      const answer = asked.map((f) => cells[names.indexOf(f)]).join(', ')
      t.same(parseQueryGpuCsv(answer + '\n', asked), [Object.fromEntries(asked.map((f) => [f, rows[0][f]]))])
      const caps = computeCapabilities(rows)
      t.same([...caps.entries()], expected.computeCap ? [[expected.uuid, expected.computeCap]] : [])
    })
  }
}

t.test('cells nvidia-smi cannot fill are absent; units in the header are dropped', async (t) => {
  const csv = readFileSync(join(FIXTURES, 'csv/tesla-p100-pcie-16gb_query-gpu_with-header.csv'), 'utf8')
  const [row] = parseQueryGpuCsvWithHeader(csv)
  t.equal(row['fan.speed'], undefined, '[N/A]')
  t.equal(row['memory.used'], '0')
  t.equal(row.name, 'Tesla P100-PCIE-16GB')
  t.same(parseQueryGpuCsv('GPU-1, [Not Supported]\nGPU-2, 8.6\n', COMPUTE_CAP_FIELDS), [
    { uuid: 'GPU-1', compute_cap: undefined },
    { uuid: 'GPU-2', compute_cap: '8.6' },
  ])
  t.same([...computeCapabilities([{ uuid: 'GPU-1', compute_cap: 'eight' }]).keys()], [], 'not a capability')
})

t.test('a row with the wrong number of cells is a clear error', async (t) => {
  t.throws(() => parseQueryGpuCsv('GPU-1, 8.0, extra\n', COMPUTE_CAP_FIELDS), NvidiaSmiParseError)
  t.throws(() => parseQueryGpuCsv('Field "compute_cap" is not a valid field to query.\n', COMPUTE_CAP_FIELDS), {
    message: /line 1 has 1 cells, not 2/,
  })
  t.same(parseQueryGpuCsv('', COMPUTE_CAP_FIELDS), [], 'no GPU, no rows')
})

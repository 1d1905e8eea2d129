// The CUDA toolkit → minimum driver table against NVIDIA's table as copied in
// test/fixtures/compat/cuda-toolkit-drivers.tsv, and against what real drivers report.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { CUDA_TOOLKIT_DRIVERS, cudaVersionForDriver, minimumDriverForCuda } from '../../src/compat/cuda-drivers.js'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

t.test('the table is the TSV, row by row', async (t) => {
  const rows = readFileSync(new URL('../fixtures/compat/cuda-toolkit-drivers.tsv', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && /^\d+\.\d+/.test(l) && !l.includes('minor-compat'))
    .map((l) => l.split('\t'))
  t.equal(CUDA_TOOLKIT_DRIVERS.length, rows.length)
  rows.forEach((f, i) => {
    const row = CUDA_TOOLKIT_DRIVERS[i]
    t.equal(row.release, f[0])
    t.equal(row.linuxMinDriver, /^>=([\d.]+)/.exec(f[1])![1], `${f[0]} Linux`)
    t.equal(row.windowsMinDriver, /^>=([\d.]+)/.exec(f[2])?.[1] ?? null, `${f[0]} Windows`)
  })
})

t.test("the CUDA version a driver supports is nvidia-smi's, on every Linux capture", async (t) => {
  const dir = join(FIXTURES, 'xml')
  for (const file of readdirSync(dir)) {
    const facts = parseNvidiaSmiXml(readFileSync(join(dir, file), 'utf8'))
    const platform = file.includes('windows') ? 'windows' : 'linux'
    t.equal(
      cudaVersionForDriver(facts.driverVersion!, platform),
      facts.cudaVersion,
      `${file}: driver ${facts.driverVersion}`,
    )
  }
})

t.test('edges of the table', async (t) => {
  t.equal(cudaVersionForDriver('470.82.01'), '11.4')
  t.equal(cudaVersionForDriver('470.42.01'), '11.4')
  t.equal(cudaVersionForDriver('470.42.00'), '11.3')
  t.equal(cudaVersionForDriver('535.104.05'), '12.2')
  t.equal(cudaVersionForDriver('610.57.04'), '13.3', 'R610 with the 13.3 runfile driver')
  t.equal(cudaVersionForDriver('410.48'), '10.0')
  t.equal(cudaVersionForDriver('396.54'), '9.2', 'R396 from the table as the CUDA 11.0 notes print it')
  t.equal(cudaVersionForDriver('390.25'), '9.0', '390.25 is below the 9.1 minimum (390.46)')
  t.equal(cudaVersionForDriver('346.46'), '7.0', 'the oldest release the table lists')
  t.equal(cudaVersionForDriver('346.46', 'windows'), null)
  t.equal(cudaVersionForDriver('340.108'), null, 'older than the table')
  t.equal(cudaVersionForDriver('latest'), null)
  t.equal(minimumDriverForCuda('12.2'), '535.54.03')
  t.equal(minimumDriverForCuda('11.4'), '470.42.01')
  t.equal(minimumDriverForCuda('9.0'), '384.81')
  t.equal(minimumDriverForCuda('8.0'), '367.48')
  t.equal(minimumDriverForCuda('6.5'), null)
})

// Every real NVIDIA_REQUIRE_CUDA of the nvidia/cuda images over time (test/fixtures/compat/
// nvidia-require-cuda-values.tsv, from NVIDIA's gitlab.com/nvidia/container-images/cuda Dockerfiles)
// evaluated on hosts of several brands and drivers, against a plain reading of what each string
// says: the host's CUDA is new enough, or one brand=B,driver>=L,driver<H alternative fits.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { evaluateRequirement, type DeviceFacts, type DriverFacts } from '../../src/compat/requirement.js'
import { cudaVersionForDriver } from '../../src/compat/cuda-drivers.js'

const rows = readFileSync(new URL('../fixtures/compat/nvidia-require-cuda-values.tsv', import.meta.url), 'utf8')
  .split('\n')
  .slice(1)
  .filter((l) => l.trim())
  .map((l) => {
    const f = l.split('\t')
    return { image: f[0], commit: f[2], require: f[5] }
  })

interface Host {
  name: string
  driver: string
  brand: string
}
const HOSTS: Host[] = [
  { name: 'Tesla on 470.82.01', driver: '470.82.01', brand: 'tesla' },
  { name: 'GeForce on 470.82.01', driver: '470.82.01', brand: 'geforce' },
  { name: 'Tesla on 450.80.02', driver: '450.80.02', brand: 'tesla' },
  { name: 'Tesla on 418.43', driver: '418.43', brand: 'tesla' },
  { name: 'GeForce on 418.43', driver: '418.43', brand: 'geforce' },
  { name: 'NVIDIA (T4, A100) on 535.104.05', driver: '535.104.05', brand: 'nvidia' },
  { name: 'GeForce on 535.104.05', driver: '535.104.05', brand: 'geforce' },
  { name: 'NVIDIA RTX on 550.54.15', driver: '550.54.15', brand: 'nvidiartx' },
  { name: 'vWS guest on 513.46', driver: '513.46', brand: 'vws' },
  { name: 'GeForce RTX on 575.57.08', driver: '575.57.08', brand: 'geforcertx' },
  { name: 'Tesla on 580.65.06', driver: '580.65.06', brand: 'tesla' },
  { name: 'GeForce on 610.57.04', driver: '610.57.04', brand: 'geforce' },
]

/** numbers of a version, for the plain reading below */
const nums = (v: string) => v.split('.').map(Number)
function cmp(a: string, b: string): number {
  const x = nums(a),
    y = nums(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
  return 0
}
function plainReading(require: string, cuda: string, h: Host): boolean {
  const [first, ...alternatives] = require.split(' ')
  if (cmp(cuda, first.replace('cuda>=', '')) >= 0) return true
  return alternatives.some((alt) => {
    const m = /^brand=(\w+),driver>=(\d+),driver<(\d+)$/.exec(alt)
    if (!m) throw new Error(`unexpected alternative ${alt}`)
    return m[1] === h.brand && cmp(h.driver, m[2]) >= 0 && cmp(h.driver, m[3]) < 0
  })
}

t.test('the data set', async (t) => {
  t.equal(rows.length, 34, 'every row is read')
  t.ok(
    rows.every((r) => r.require.startsWith('cuda>=')),
    'each starts with cuda>=',
  )
})

for (const h of HOSTS) {
  t.test(h.name, async (t) => {
    const driver: DriverFacts = { driverVersion: h.driver, cudaVersion: cudaVersionForDriver(h.driver)! }
    const device: DeviceFacts = { brand: h.brand }
    for (const r of rows) {
      const result = evaluateRequirement(r.require, driver, device)
      t.equal(result.satisfied, plainReading(r.require, driver.cudaVersion!, h), `${r.image} @${r.commit.slice(0, 8)}`)
    }
  })
}

const find = (image: string, commit?: string) =>
  rows.find((r) => r.image === image && (!commit || r.commit.startsWith(commit)))!.require
const verdict = (require: string, driver: string, brand: string) =>
  evaluateRequirement(require, { driverVersion: driver, cudaVersion: cudaVersionForDriver(driver)! }, { brand })
    .satisfied

t.test('known verdicts', async (t) => {
  const cuda13 = find('nvidia/cuda:13.0.0-base-ubuntu2204')
  t.notOk(verdict(cuda13, '535.104.05', 'geforce'), 'CUDA 13.0 image on a GeForce with 535: no forward compatibility')
  t.ok(verdict(cuda13, '535.104.05', 'tesla'), 'on a Tesla with 535: the forward-compatible branch')
  t.ok(verdict(cuda13, '550.54.15', 'nvidia'), 'on an NVIDIA-branded data-center GPU with 550')
  t.notOk(verdict(cuda13, '545.23.08', 'tesla'), '545 is not a listed branch')
  t.ok(verdict(cuda13, '580.65.06', 'geforce'), 'any brand once the driver supports 13.0')
  const cuda118 = find('nvidia/cuda:11.8.0-base-ubuntu2204')
  t.ok(verdict(cuda118, '470.82.01', 'tesla'))
  t.ok(verdict(cuda118, '470.82.01', 'geforce'), 'the 11.8 images also list geforce on 470')
  t.notOk(verdict(cuda118, '510.47.03', 'geforce'), 'but not on 510 any more')
  const cuda102 = find('nvidia/cuda:10.2-base-ubuntu18.04 (history)')
  t.ok(verdict(cuda102, '418.43', 'tesla'), '10.2 on a Tesla with 418')
  t.notOk(verdict(cuda102, '418.43', 'quadro'), 'not on a Quadro with 418')
  t.ok(verdict(find('nvidia/cuda:9.2-base (history)'), '418.43', 'quadro'))
})

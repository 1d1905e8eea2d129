// GPU health from real -q -x captures (and captures with one field changed, derived in the test),
// the PCI count from a synthetic sysfs tree, the driver/library mismatch, the metrics, and the
// gpu.health event published once per change.
import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { countPciGpus, judgeHost } from '../../src/gpu/health.js'
import { GpuHealthWatcher } from '../../src/gpu/health-watch.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import { SnapshotStore, type GpuFacts } from '../../src/core/snapshot.js'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import { FIXTURES } from '../harness/nvidia-smi.js'
import { testDir } from '../harness/agent.js'

const xml = (name: string) => readFileSync(join(FIXTURES, 'xml', name), 'utf8')
const A5000 = 'rtx-a5000_x2_driver-590.44.01_dtd-v13.xml'
const T4 = 'tesla-t4_driver-515.105.01_dtd-v11.xml'
const P400 = 'quadro-p400_driver-418.43_no-doctype.xml'

t.test('health readings in each DTD spelling', async (t) => {
  const a5000 = parseNvidiaSmiXml(xml(A5000))
  t.match(a5000.gpus[0].health, {
    remappedRows: { correctable: 0, uncorrectable: 0, pending: false, failure: false },
  })
  const t4 = parseNvidiaSmiXml(xml(T4)).gpus[0].health!
  t.same(t4.ecc, { volatile: { correctable: 0, uncorrectable: 0 }, aggregate: { correctable: 0, uncorrectable: 0 } })
  t.same(
    t4.clockEvents,
    { hwSlowdown: false, hwThermalSlowdown: false, hwPowerBrakeSlowdown: false, swThermalSlowdown: false },
    '<clocks_throttle_reasons> before R535',
  )
  t.equal(parseNvidiaSmiXml(xml(P400)).gpus[0].health!.ecc, undefined, 'N/A everywhere: absent, not zero')
  for (const g of [...a5000.gpus, ...parseNvidiaSmiXml(xml(T4)).gpus])
    t.equal(judgeHost({ ...a5000, gpus: [g] }).state, 'ok')
})

t.test('what degrades and what fails a GPU', async (t) => {
  const derived = (from: string, to: string) => parseNvidiaSmiXml(xml(A5000).replace(from, to))
  const pending = judgeHost(derived('<remapped_row_pending>No', '<remapped_row_pending>Yes'))
  t.match(pending, {
    state: 'degraded',
    gpus: [{ state: 'degraded', reasons: ['row_remap_pending'] }, { state: 'ok' }],
  })
  t.match(judgeHost(derived('<remapped_row_failure>No', '<remapped_row_failure>Yes')), {
    state: 'failed',
    gpus: [{ reasons: ['row_remap_failure'] }],
  })
  const t4 = parseNvidiaSmiXml(
    xml(T4).replace(
      /<volatile>\s*<sram_correctable>0<\/sram_correctable>\s*<sram_uncorrectable>0/,
      '<volatile><sram_correctable>3</sram_correctable><sram_uncorrectable>2',
    ),
  )
  t.same(t4.gpus[0].health!.ecc!.volatile, { correctable: 3, uncorrectable: 2 })
  t.match(judgeHost(t4), { state: 'failed', gpus: [{ reasons: ['ecc_uncorrectable_volatile'] }] })
  const hot = parseNvidiaSmiXml(
    xml(T4).replace(
      '<clocks_throttle_reason_hw_thermal_slowdown>Not Active',
      '<clocks_throttle_reason_hw_thermal_slowdown>Active',
    ),
  )
  t.match(judgeHost(hot), { state: 'degraded', gpus: [{ reasons: ['hw_thermal_slowdown'] }] })
})

t.test('host reasons: driver/library mismatch, and GPUs expected but not seen', async (t) => {
  const mismatch: GpuFacts = {
    available: false,
    reason: 'nvidia-smi exited with 18: Failed to initialize NVML: Driver/library version mismatch',
    gpus: [],
  }
  t.match(judgeHost(mismatch), {
    state: 'failed',
    reasons: ['driver_library_mismatch'],
    advice: /reboot or reload the driver/,
  })
  t.match(judgeHost({ available: false, reason: 'nvidia-smi not found', gpus: [] }), { state: 'ok', reasons: [] })
  const a5000 = parseNvidiaSmiXml(xml(A5000))
  t.match(judgeHost({ ...a5000, expectedGpus: 3 }), {
    state: 'failed',
    reasons: ['gpus_missing'],
    advice: /1 GPU\(s\) on the PCI bus/,
  })
  t.match(judgeHost({ ...a5000, expectedGpus: 2 }), { state: 'ok' })
})

t.test('NVIDIA display and 3D controllers counted on a synthetic sysfs PCI tree', async (t) => {
  const root = testDir(t).path
  const device = (addr: string, vendor: string, cls: string) => {
    mkdirSync(join(root, addr))
    writeFileSync(join(root, addr, 'vendor'), `${vendor}\n`)
    writeFileSync(join(root, addr, 'class'), `${cls}\n`)
  }
  device('0000:3b:00.0', '0x10de', '0x030200') // 3D controller (data-center GPU)
  device('0000:5e:00.0', '0x10de', '0x030000') // VGA (GeForce, RTX)
  device('0000:5e:00.1', '0x10de', '0x040300') // its HDMI audio function: not a GPU
  device('0000:00:02.0', '0x8086', '0x030000') // an Intel VGA: not NVIDIA
  device('0000:af:00.0', '0x10de', '0x068000') // NVSwitch bridge: not a GPU
  t.equal(await countPciGpus(root), 2)
  t.equal(await countPciGpus(join(root, 'absent')), null)
})

t.test('gpu.health is published once per change, and the health series render', async (t) => {
  const store = new SnapshotStore()
  const bus = new EventBus()
  const events: AgentEvent[] = []
  bus.subscribe((e) => {
    if (e.type === 'gpu.health') events.push(e)
  })
  const watcher = new GpuHealthWatcher(store, bus)
  await watcher.start()
  t.teardown(() => watcher.stop())
  const ok = parseNvidiaSmiXml(xml(A5000))
  store.set('gpu', ok)
  store.set('gpu', ok)
  t.equal(events.length, 0, 'healthy from the start: nothing to say')
  const pending = parseNvidiaSmiXml(xml(A5000).replace('<remapped_row_pending>No', '<remapped_row_pending>Yes'))
  store.set('gpu', pending)
  store.set('gpu', pending)
  t.equal(events.length, 1, 'one event for the change, not one per collection')
  t.match(events[0].data, { state: 'degraded', gpus: [{ index: 0, reasons: ['row_remap_pending'] }] })
  store.set('gpu', { available: false, reason: 'nvidia-smi did not answer within 10 s and was killed', gpus: [] })
  t.equal(events.length, 1, 'a spell without facts is not a health change')
  const mismatch: GpuFacts = {
    available: false,
    reason: 'Failed to initialize NVML: Driver/library version mismatch',
    gpus: [],
  }
  store.set('gpu', mismatch)
  t.match(events[1].data, { state: 'failed', reasons: ['driver_library_mismatch'], advice: /reboot or reload/ })
  store.set('gpu', ok)
  t.match(events[2].data, { state: 'ok' }, 'recovery is a change too')

  store.set('gpu', { ...pending, expectedGpus: 3 })
  const { registry } = createAgentMetrics({ snapshot: () => store.get(), version: 'test' }, { processMetrics: false })
  const body = await registry.metrics()
  t.match(body, /^gpuhost_gpu_health\{gpu="0",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789ab",state="degraded"\} 1$/m)
  t.match(body, /^gpuhost_gpu_health_reason\{gpu="0",uuid="[^"]+",reason="row_remap_pending"\} 1$/m)
  t.match(body, /^gpuhost_gpu_remapped_rows_state\{gpu="0",uuid="[^"]+",state="pending"\} 1$/m)
  t.match(body, /^gpuhost_gpus_expected 3$/m)
  t.match(body, /^gpuhost_gpus_seen 2$/m)
  t.match(body, /^gpuhost_gpu_driver_library_mismatch 0$/m)
})

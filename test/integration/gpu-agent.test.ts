// The running agent with a stand-in nvidia-smi: GPU metrics from a real capture on /metrics
// (promtool accepts them), GPU facts in /v1/status, and a hung nvidia-smi that never stops it.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAgent } from '../harness/agent.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { which } from '../harness/services.js'

const NO_DOCKER = { socket: '/nonexistent/docker.sock' }

async function metricsWhen(url: string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const body = await (await fetch(`${url}/metrics`)).text()
    if (pattern.test(body)) return body
    await sleep(100)
  }
  throw new Error(`no ${pattern} on /metrics`)
}

t.test('GPU metrics of a dual A5000 host', async (t) => {
  const nvidiaSmi = fakeNvidiaSmi(t, { fixture: 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml' })
  const agent = await startAgent(
    t,
    { docker: NO_DOCKER, gpu: { nvidiaSmi, timeoutSeconds: 5, intervalSeconds: 60 } },
    { waitSnapshot: true },
  )
  const body = await metricsWhen(agent.url, /gpuhost_gpu_info/)
  const lines = body.split('\n')
  const has = (line: string) => t.ok(lines.includes(line), line)
  has(
    'gpuhost_gpu_info{gpu="0",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789ab",' +
      'name="NVIDIA RTX A5000",driver_version="590.44.01",cuda_version="13.1"} 1',
  )
  has(
    'gpuhost_gpu_info{gpu="1",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789cd",' +
      'name="NVIDIA RTX A5000",driver_version="590.44.01",cuda_version="13.1"} 1',
  )
  has(`gpuhost_gpu_memory_total_bytes{gpu="0",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789ab"} ${24564 * 1024 * 1024}`)
  has(`gpuhost_gpu_memory_used_bytes{gpu="1",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789cd"} ${17253 * 1024 * 1024}`)
  has('gpuhost_gpu_utilization_ratio{gpu="0",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789ab"} 0')
  has('gpuhost_gpu_temperature_celsius{gpu="1",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789cd"} 15')
  has('gpuhost_gpu_power_draw_watts{gpu="0",uuid="GPU-12345678-aaaa-bbbb-cccc-0123456789ab"} 6.52')
  has('gpuhost_collector_success{collector="gpu"} 1')
  has('gpuhost_images_cuda_incompatible 0')
  t.match(body, /gpuhost_collector_duration_seconds\{collector="gpu"\} [0-9.e-]+/)
  if (which('promtool')) {
    // The GPU families only: prom-client's own process metrics are not this suite's to judge.
    const ours =
      lines.filter((l) => /^(# (HELP|TYPE) )?gpuhost_(gpu_|collector_|images_cuda)/.test(l)).join('\n') + '\n'
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: ours, encoding: 'utf8' })
    t.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`)
  }
  const status = await (await fetch(`${agent.url}/v1/status`)).json()
  t.match(status.gpu, { available: true, driverVersion: '590.44.01', cudaVersion: '13.1' })
  t.equal(status.gpu.gpus.length, 2)
  t.equal((await agent.stop()).code, 0)
})

t.test('a hung nvidia-smi: collector failed, agent serving, clean stop', async (t) => {
  const nvidiaSmi = fakeNvidiaSmi(t, { hang: true })
  const agent = await startAgent(
    t,
    { docker: NO_DOCKER, gpu: { nvidiaSmi, timeoutSeconds: 1, intervalSeconds: 1 } },
    { waitSnapshot: true },
  )
  const body = await metricsWhen(agent.url, /gpuhost_collector_success\{collector="gpu"\} 0/)
  t.notMatch(body, /gpuhost_gpu_info\{/, 'no GPU series without GPU facts')
  const status = await (await fetch(`${agent.url}/v1/status`)).json()
  t.match(status.gpu, { available: false, reason: /did not answer within 1 s and was killed/ })
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200)
  // Stop while the next nvidia-smi is hanging: the run in flight is killed, the stop is quick.
  await sleep(1200)
  const { code, ms } = await agent.stop()
  t.equal(code, 0, 'exit 0')
  t.comment(`stopped in ${ms} ms with nvidia-smi hanging`)
  t.match(agent.logs(), /collector gpu failed/)
})

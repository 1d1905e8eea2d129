// Host facts end to end, on this machine: `gpuhost check` reads them with systeminformation and they
// match what Node itself reads of the host; a built agent shows them in /v1/status and /metrics,
// reads them again on SIGHUP (and keeps running), and sends them in its hello to a built
// coordinator, whose GET /v1/hosts/:id shows them; the coordinator refuses a hello whose host
// facts are out of bounds and stores only the fields it knows. No Docker or GPU is needed.
import t, { type Test } from 'tap'
import { arch, cpus, release, totalmem } from 'node:os'
import WebSocket from 'ws'
import { stringify } from 'yaml'
import { runCliAsync, startAgent, testDir } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'

const UNAME_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' }
const NO_ENGINES = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }

/** the host facts as Node reads them, which systeminformation's must equal */
function expectHost(t: Test, host: any, what: string): void {
  t.equal(host.os.kernel, release(), `${what}: kernel is os.release()`)
  t.equal(host.os.arch, UNAME_ARCH[arch()] ?? arch(), `${what}: arch is process.arch, as uname -m names it`)
  t.equal(host.os.platform, process.platform, `${what}: platform`)
  // both read MemTotal of /proc/meminfo; a tolerance all the same, for a kernel that changes it
  t.ok(Math.abs(host.memory.totalBytes - totalmem()) <= totalmem() * 0.01, `${what}: memory total is os.totalmem()`)
  t.equal(host.cpu.cores, cpus().length, `${what}: logical cores`)
  t.ok(host.cpu.physicalCores >= 1 && host.cpu.physicalCores <= host.cpu.cores, `${what}: physical cores`)
  t.ok(Array.isArray(host.blockDevices) && host.blockDevices.length <= 64, `${what}: a bounded device list`)
  t.notOk(
    host.blockDevices.some((d: any) => /^(loop|ram|zram)\d/.test(d.name)),
    `${what}: no loop or RAM devices`,
  )
  t.same(host.unavailable, [], `${what}: every part was read`)
}

t.test('gpuhost check shows the host facts of this machine', async (t) => {
  const config = testDir(t).file('agent.yaml', stringify({ tokenFile: null, ...NO_ENGINES }))
  const json = await runCliAsync(['check', '--json', '--config', config])
  t.equal(json.code, 69, 'the runtime is unreachable: 69, the host facts all the same')
  const report = JSON.parse(json.stdout)
  expectHost(t, report.host, 'check --json')
  const human = await runCliAsync(['check', '--config', config])
  t.match(human.stdout, new RegExp(`^Host: .*, kernel ${release().replace(/[.+]/g, '\\$&')}, `, 'm'))
  t.match(human.stdout, /^ {2}CPU: .*, \d+ cores \(\d+ physical\)$/m)
  t.match(human.stdout, /^ {2}Memory: \d+\.\d GiB$/m)
})

t.test('the agent shows them in /v1/status and /metrics, re-reads on SIGHUP, and tells the coordinator', async (t) => {
  const coord = await startCoordinator(t)
  const agent = await startAgent(t, {
    hostId: 'facts-1',
    tokenFile: null,
    ...NO_ENGINES,
    coordinator: { url: coord.agentsUrl, tokenFile: coord.tokenFileFor('facts-1'), reconnectMaxSeconds: 1 },
  })
  const status = async () => (await (await fetch(`${agent.url}/v1/status`)).json()) as any
  await waitFor('host facts in /v1/status', async () => (await status()).host != null, 30_000, 100)
  const first = (await status()).host
  expectHost(t, first, '/v1/status')
  t.match((await status()).collectors.host, { success: true }, 'recorded as the host collector')

  const metrics = await (await fetch(`${agent.url}/metrics`)).text()
  const info = metrics.split('\n').find((l) => l.startsWith('gpuhost_host_info{'))
  t.ok(info, 'gpuhost_host_info is exported')
  t.match(info, `kernel="${release()}"`)
  t.match(info, `arch="${first.os.arch}"`)
  t.match(info, /\} 1$/)
  t.match(metrics, new RegExp(`^gpuhost_host_memory_bytes ${first.memory.totalBytes}$`, 'm'))

  await waitFor(
    'the host in the coordinator',
    async () => (await coord.api('/v1/hosts/facts-1')).body?.host != null,
    30_000,
    200,
  )
  const stored = (await coord.api('/v1/hosts/facts-1')).body.host
  t.same(stored, first, 'GET /v1/hosts/:id shows the facts the agent read')
  const listed = (await coord.api('/v1/hosts')).body.hosts.find((h: any) => h.hostId === 'facts-1')
  t.same(listed.host, first, 'and GET /v1/hosts lists them')

  process.kill(agent.pid, 'SIGHUP')
  await waitFor('a second read after SIGHUP', async () => (await status()).host.readAt !== first.readAt, 30_000, 100)
  expectHost(t, (await status()).host, 'after SIGHUP')
  t.match(agent.logs(), /SIGHUP: reading the host facts again/)
  const reread = (await status()).host
  await waitFor(
    'the re-read facts in the coordinator (a snapshot carries them)',
    async () => (await coord.api('/v1/hosts/facts-1')).body?.host?.readAt === reread.readAt,
    30_000,
    200,
  )
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'SIGHUP does not end the agent')
  t.equal((await agent.stop()).code, 0, 'and it stops cleanly')
})

t.test('the coordinator refuses host facts out of bounds and stores only the fields it knows', async (t) => {
  const coord = await startCoordinator(t)
  const ws = new WebSocket(coord.agentsUrl, { headers: { authorization: `Bearer ${coord.tokenFor('raw-h')}` } })
  t.teardown(() => ws.terminate())
  const inbox: any[] = []
  ws.on('message', (d) => inbox.push(JSON.parse(String(d))))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const next = async (pred: (m: any) => boolean) => {
    await waitFor('a reply', () => inbox.some(pred), 5000, 20)
    return inbox.splice(inbox.findIndex(pred), 1)[0]
  }
  const hello = (id: string, host: unknown) =>
    JSON.stringify({
      v: 1,
      id,
      ts: new Date().toISOString(),
      hostId: 'raw-h',
      type: 'hello',
      version: '9.9.9',
      facts: { host },
    })
  const facts = {
    readAt: new Date().toISOString(),
    os: { distro: 'Ubuntu', release: '22.04', kernel: '5.15.0-105-generic', arch: 'x86_64' },
    cpu: { manufacturer: 'AMD', brand: 'EPYC 7742', physicalCores: 128, cores: 256 },
    memory: { totalBytes: 2164197146624 },
    system: { manufacturer: 'NVIDIA', model: 'DGXA100', virtual: false },
    blockDevices: [{ name: 'nvme0n1', type: 'disk', sizeBytes: 3840755982336, mount: '/raid' }],
    blockDevicesOmitted: 0,
    unavailable: [],
  }
  ws.send(hello('big', { ...facts, os: { ...facts.os, distro: 'x'.repeat(201) } }))
  const refusal = await next((m) => m.type === 'error')
  t.match(refusal, { code: 'bad_message', ref: 'big', message: /facts\.host\.os\.distro/ })
  ws.send(hello('many', { ...facts, blockDevices: Array(65).fill({ name: 'sda' }) }))
  t.match(await next((m) => m.type === 'error'), { code: 'bad_message', ref: 'many', message: /blockDevices/ })
  ws.send(hello('ctl', { ...facts, system: { model: 'DGX\u001b[2J' } }))
  t.match(await next((m) => m.type === 'error'), { code: 'bad_message', ref: 'ctl', message: /control characters/ })
  t.equal((await coord.api('/v1/hosts/raw-h')).status, 404, 'a refused hello stores nothing')

  const extra = {
    ...facts,
    serial: 'S3CR3T',
    os: { ...facts.os, hostname: 'leak' },
    blockDevices: [{ name: 'a', uuid: 'u' }],
  }
  ws.send(hello('ok', extra))
  t.match(await next((m) => m.type === 'ack'), { ids: ['ok'] })
  const host = (await coord.api('/v1/hosts/raw-h')).body.host
  t.same(host, { ...facts, blockDevices: [{ name: 'a' }] }, 'rebuilt from the fields the schema names')
  t.notOk(JSON.stringify(host).includes('S3CR3T') || JSON.stringify(host).includes('leak'), 'nothing else kept')
  t.equal((await coord.stop()).code, 0)
})

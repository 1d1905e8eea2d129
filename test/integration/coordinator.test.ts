// Coordinator and agent on loopback, both as users run them: the fleet view, commands through the
// API, events delivered once across outages and restarts, tokens refused on both sides.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { post, startAgent, testDir, type RunningAgent } from '../harness/agent.js'
import { coordinatorSetup, startCoordinator, waitForCommand } from '../harness/coordinator.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { waitFor } from '../harness/ports.js'
import { which } from '../harness/services.js'

function agentConfig(
  t: Test,
  coord: { agentsUrl: string; tokenFileFor(hostId: string): string },
  hostId: string,
  extra: Record<string, unknown> = {},
) {
  return {
    hostId,
    docker: { socket: '/nonexistent/docker.sock' },
    // a path of its own, so disk facts do not wait for Docker's root dir
    disk: { path: tmpdir(), checkIntervalSeconds: 1 },
    gpu: {
      nvidiaSmi: fakeNvidiaSmi(t, {
        fixture: 'xml/a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml',
      }),
      intervalSeconds: 1,
    },
    coordinator: {
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor(hostId),
      reconnectMaxSeconds: 1,
      pingIntervalSeconds: 2,
    },
    ...extra,
  }
}

async function metric(url: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : null
}

t.test('the coordinator lists the host with its facts and runs commands on it', async (t) => {
  const coord = await startCoordinator(t)
  const agent = await startAgent(t, agentConfig(t, coord, 'gpu-node-t1'))
  await waitFor(
    'the host listed as connected',
    async () => {
      const { body } = await coord.api('/v1/hosts')
      return body.hosts.length === 1 && body.hosts[0].connected === true
    },
    15_000,
    100,
  )

  // The facts the coordinator shows are the agent's own; driver, CUDA and disk appear once collected.
  const status = await (await fetch(`${agent.url}/v1/status`)).json()
  await waitFor(
    "the coordinator to show the agent's facts",
    async () => {
      const now = await (await fetch(`${agent.url}/v1/status`)).json()
      const host = (await coord.api('/v1/hosts/gpu-node-t1')).body
      // The disk's used and free bytes move with every other test writing to the same filesystem:
      // what must match is which filesystem it is and its size.
      const stable = (d: { path?: string; mountpoint?: string; sizeBytes?: number } | null) =>
        d && JSON.stringify([d.path, d.mountpoint, d.sizeBytes])
      return JSON.stringify(host.gpu) === JSON.stringify(now.gpu) && stable(host.disk) === stable(now.disk)
    },
    15_000,
    200,
  )
  const host = (await coord.api('/v1/hosts/gpu-node-t1')).body
  t.match(host, { hostId: 'gpu-node-t1', connected: true, version: status.version })
  t.ok(Date.parse(host.lastSeen) > 0, 'lastSeen is a time')
  for (const key of ['hostId', 'connected', 'lastSeen', 'version', 'gpu', 'disk', 'images', 'lastPrune', 'lastPrewarm'])
    t.ok(key in host, `the record has ${key}`)
  if (host.gpu.available) {
    t.equal(host.gpu.driverVersion, '535.54.03', 'driver from nvidia-smi')
    t.equal(host.gpu.cudaVersion, '12.2', 'CUDA from nvidia-smi')
  } else {
    t.comment(`no GPU facts in this build: ${host.gpu.reason}`)
  }
  if (host.disk) t.ok(host.disk.sizeBytes > 0 && host.disk.usedPercent >= 0, 'disk size and usage')
  else t.comment('no disk facts in this build')

  const sent = await coord.api('/v1/hosts/gpu-node-t1/commands', { body: { action: 'status' } })
  t.equal(sent.status, 202)
  t.match(sent.body, { commandId: String })
  const done = await waitForCommand(coord, sent.body.commandId)
  t.match(done, { commandId: sent.body.commandId, hostId: 'gpu-node-t1', action: 'status', status: 'succeeded' })
  t.equal(done.result.hostId, 'gpu-node-t1', "the result is the agent's status")
  t.equal(done.result.coordinator.connected, true, 'which knows it is connected')

  // A prune through the API runs on the agent where this build has prune; its report is the result.
  const pruneSent = await coord.api('/v1/hosts/gpu-node-t1/commands', {
    body: { action: 'prune', args: { dryRun: true } },
  })
  const pruned = await waitForCommand(coord, pruneSent.body.commandId)
  if (pruned.status === 'succeeded')
    t.match(pruned.result, { trigger: 'coordinator', dryRun: true }, 'the dry-run prune report')
  else t.match(pruned, { status: 'failed', error: /unknown action prune/ }, 'no prune in this build: the agent says so')

  // An Alertmanager alert naming the host by instance becomes a prune command for it.
  const hook = await coord.api('/hooks/alertmanager', {
    body: {
      version: '4',
      groupKey: '{}:{alertname="GpuhostDiskHigh"}',
      status: 'firing',
      receiver: 'gpuhost-prune',
      alerts: [
        { status: 'firing', labels: { alertname: 'GpuhostDiskHigh', instance: 'gpu-node-t1:9477' } },
        { status: 'firing', labels: { alertname: 'GpuhostDiskHigh', instance: 'other-node:9477' } },
      ],
    },
  })
  t.equal(hook.status, 202)
  t.equal(hook.body.commands.length, 1)
  t.equal(hook.body.commands[0].hostId, 'gpu-node-t1')
  t.match(hook.body.skipped, [{ reason: 'no known host other-node' }])
  const prune = await waitForCommand(coord, hook.body.commands[0].commandId)
  t.equal(prune.action, 'prune')
  t.ok(
    prune.status === 'succeeded' || /unknown action prune/.test(prune.error),
    `the prune ran or the agent says it has none (${prune.status})`,
  )

  const compat = await coord.api('/v1/compat?image=nvcr.io/nvidia/pytorch:23.10-py3')
  t.equal(compat.status, 200)
  t.equal(compat.body.hosts.length, 1)
  t.match(compat.body.hosts[0], { hostId: 'gpu-node-t1', reason: String })

  const events = (await coord.api('/v1/events?hostId=gpu-node-t1&type=agent.started')).body.events
  t.equal(events.length, 1, 'the agent.started event arrived')
  t.match(events[0], { hostId: 'gpu-node-t1', type: 'agent.started', data: { version: status.version } })

  t.equal(await metric(coord.url, 'gpuhost_coordinator_agents_connected'), 1)
  t.equal(await metric(coord.url, 'gpuhost_coordinator_commands{action="status",status="succeeded"}'), 1)
  t.equal(await metric(agent.url, 'gpuhost_coordinator_connected'), 1)
  if (which('promtool')) {
    // The coordinator's own families; prom-client's process metrics are not this suite's to judge.
    const ours = (await (await fetch(`${coord.url}/metrics`)).text())
      .split('\n')
      .filter((l) => !/gpuhost_coordinator_(nodejs|process)_/.test(l))
      .join('\n')
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: ours, encoding: 'utf8' })
    t.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`)
  }

  t.equal((await coord.api('/v1/hosts/gpu-node-t1/commands', { body: '{"action":' })).status, 400, 'bad JSON')
  t.equal(
    (await coord.api('/v1/hosts/gpu-node-t1/commands', { body: { action: 'reboot' } })).status,
    400,
    'unknown action',
  )
  t.equal(
    (await coord.api('/v1/hosts/gpu-node-t1/commands', { body: { action: 'status', args: [] } })).status,
    400,
    'args not an object',
  )
  t.equal((await coord.api('/v1/hosts/nobody/commands', { body: { action: 'status' } })).status, 404, 'unknown host')
  t.equal((await coord.api('/v1/commands/nothing')).status, 404)
  const listed = (await coord.api('/v1/commands?hostId=gpu-node-t1&action=status')).body.commands
  t.same(
    listed.map((c: any) => c.commandId),
    [sent.body.commandId],
    'commands listed by host and action',
  )
  t.equal((await coord.api('/v1/commands?status=done')).status, 400, 'an unknown status is a bad query')
  t.equal((await coord.api('/v1/compat')).status, 400, 'compat without image')
  t.equal((await coord.api('/v1/events?limit=0')).status, 400)
  t.equal((await coord.api('/hooks/alertmanager', { body: { alerts: 'none' } })).status, 400)

  await agent.stop()
  await waitFor(
    'the host shown disconnected',
    async () => (await coord.api('/v1/hosts/gpu-node-t1')).body.connected === false,
    10_000,
    100,
  )
})

t.test('every event reaches the coordinator once, across its outage and agent restarts', async (t) => {
  const setup = await coordinatorSetup(t)
  let coord = await startCoordinator(t, setup)
  const stateDir = join(testDir(t, 'gh-state-').path, 'state')
  const config = agentConfig(t, setup, 'gpu-node-t2', { stateDir })
  const started = async (): Promise<RunningAgent> => startAgent(t, config)
  const startedEvents = async () =>
    (await coord.api('/v1/events?hostId=gpu-node-t2&type=agent.started')).body.events as { id: string }[]

  let agent = await started()
  await waitFor('the first agent.started', async () => (await startedEvents()).length === 1, 15_000, 100)
  t.equal((await coord.stop()).code, 0, 'coordinator stopped cleanly')

  // While the coordinator is away: a prune and a prewarm where this build has them, then two
  // restarts, each of which puts the old agent's agent.stopping and the new one's agent.started
  // into the outbox (and collector events where a source is missing: hence at least two).
  const pending = async () => (await metric(agent.url, 'gpuhost_outbox_pending_events')) ?? -1
  const jobs: string[] = []
  for (const [path, body, job] of [
    ['/v1/prune', { dryRun: true }, 'prune'],
    ['/v1/prewarm', {}, 'prewarm'],
  ] as const) {
    const res = await post(`${agent.url}${path}`, agent.token, body)
    if (res.status === 404) t.comment(`no ${path} in this build`)
    else jobs.push(job)
  }
  for (let restart = 1; restart <= 2; restart++) {
    const before = await pending()
    await agent.stop()
    agent = await started()
    await waitFor(
      `restart ${restart}: its stop and start in the outbox`,
      async () => (await pending()) >= before + 2,
      10_000,
      100,
    )
  }
  t.ok((await pending()) >= 2, 'the outbox holds what the coordinator missed')
  t.equal(await metric(agent.url, 'gpuhost_coordinator_connected'), 0)
  const status = await (await fetch(`${agent.url}/v1/status`)).json()
  t.match(status.coordinator, { configured: true, connected: false })

  coord = await startCoordinator(t, setup)
  await waitFor(
    'the outbox drained',
    async () => (await metric(agent.url, 'gpuhost_outbox_pending_events')) === 0,
    20_000,
    100,
  )
  const events = await startedEvents()
  t.equal(events.length, 3, 'all three agent.started events are there')
  t.equal(new Set(events.map((e) => e.id)).size, 3, 'each once')
  const times = (events as unknown as { ts: string }[]).map((e) => e.ts)
  t.same(times, [...times].sort(), 'and in the order they happened')
  const all = (await coord.api('/v1/events?hostId=gpu-node-t2')).body.events as { id: string; type: string }[]
  t.equal(new Set(all.map((e) => e.id)).size, all.length, `no event twice among ${all.length}`)
  t.equal(all.filter((e) => e.type === 'agent.stopping').length, 2, 'both stops while it was away arrived')
  for (const job of jobs) {
    t.equal(all.filter((e) => e.type === `${job}.started`).length, 1, `the ${job} started once`)
    t.equal(all.filter((e) => e.type === `${job}.finished`).length, 1, `and finished once`)
  }
  t.equal(await metric(coord.url, 'gpuhost_coordinator_agents_connected'), 1, 'the agent reconnected by itself')
  await agent.stop()
})

t.test('a wrong token is refused on both sides, and the agent keeps trying', async (t) => {
  const coord = await startCoordinator(t)
  const dir = testDir(t)
  const wrong = dir.file('wrong-token', 'not-the-token\n')
  const agent = await startAgent(
    t,
    agentConfig(t, { agentsUrl: coord.agentsUrl, tokenFileFor: () => wrong }, 'gpu-node-t3'),
  )
  await waitFor(
    'two refused attempts',
    () =>
      (agent.logs().match(/refused the token \(401\)/g) ?? []).length >= 1 &&
      (coord.logs().match(/refused an agent/g) ?? []).length >= 2,
    15_000,
    100,
  )
  t.ok((await fetch(`${agent.url}/healthz`)).ok, 'the agent still serves')
  t.equal(await metric(agent.url, 'gpuhost_coordinator_connected'), 0)
  t.same((await coord.api('/v1/hosts')).body.hosts, [], 'no host joined')

  for (const headers of [{}, { authorization: `Bearer ${coord.adminToken}` }]) {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(coord.agentsUrl, { headers })
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0)
        ws.terminate()
      })
      ws.on('open', () => {
        reject(new Error('upgrade accepted'))
        ws.terminate()
      })
      ws.on('error', () => {})
    })
    t.equal(status, 401, `upgrade ${'authorization' in headers ? 'with the admin token' : 'without a token'}: 401`)
  }
  t.equal((await coord.api('/v1/hosts', { token: 'wrong' })).status, 401, 'API with a wrong token')
  t.equal((await coord.api('/v1/hosts', { token: null })).status, 401, 'API without a token')
  t.equal(
    (await coord.api('/hooks/alertmanager', { body: { alerts: [] }, token: 'wrong' })).status,
    401,
    'webhook with a wrong token',
  )
  t.equal(
    (await coord.api('/v1/hosts', { token: coord.tokenFor('gpu-node-t3') })).status,
    401,
    "an agent's token is not the admin token",
  )
  t.equal(
    (await coord.api('/metrics', { token: null })).status,
    200,
    '/metrics is open to scrapers (metricsAuth: false)',
  )
  t.equal(
    (await coord.api('/no/such/path', { token: null })).status,
    401,
    'an unknown path without a token: 401, not 404',
  )
  t.equal((await coord.api('/no/such/path')).status, 404, 'an unknown path with the admin token: 404')
  t.equal((await coord.api('/healthz', { token: null })).status, 200, '/healthz is open')
  await agent.stop()
})

t.test('bad frames are answered with errors; duplicates are stored once', async (t) => {
  const coord = await startCoordinator(t, undefined, { maxFrameBytes: 4096 })
  const ws = new WebSocket(coord.agentsUrl, { headers: { authorization: `Bearer ${coord.tokenFor('raw-1')}` } })
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
  const env = (type: string, body: object, id = `m-${Math.random()}`) =>
    JSON.stringify({ v: 1, id, ts: new Date().toISOString(), hostId: 'raw-1', type, ...body })

  ws.send('{"not json')
  t.match(await next((m) => m.type === 'error'), { code: 'bad_json', ref: null })
  ws.send(env('event', { eventType: 'x', data: {} }, 'early'))
  t.match(await next((m) => m.type === 'error'), {
    code: 'bad_message',
    ref: 'early',
    message: /first message must be hello/,
  })
  ws.send(env('hello', { version: '9.9.9', facts: {} }, 'hello-1'))
  t.match(await next((m) => m.type === 'ack'), { ids: ['hello-1'] })
  ws.send(env('gossip', {}, 'g-1'))
  t.match(await next((m) => m.type === 'error'), { code: 'unknown_type', ref: 'g-1' })
  ws.send(env('event', { eventType: 'x', data: { pad: 'y'.repeat(5000) } }, 'big'))
  t.match(await next((m) => m.type === 'error'), { code: 'too_large' })
  ws.send(env('event', { eventType: 'prune.finished', data: { freedBytes: 1 } }, 'dup-1'))
  t.match(await next((m) => m.type === 'ack'), { ids: ['dup-1'] })
  ws.send(env('event', { eventType: 'prune.finished', data: { freedBytes: 1 } }, 'dup-1'))
  t.match(await next((m) => m.type === 'ack'), { ids: ['dup-1'] }, 'a duplicate is acked again')
  ws.send(env('command.result', { commandId: 'never-sent', ok: true }, 'r-1'))
  t.match(await next((m) => m.type === 'ack'), { ids: ['r-1'] }, 'a result for an unknown command is acked and dropped')

  const events = (await coord.api('/v1/events?hostId=raw-1')).body.events
  t.same(
    events.map((e: any) => e.id),
    ['dup-1'],
    'stored once',
  )
  const host = (await coord.api('/v1/hosts/raw-1')).body
  t.equal(host.lastPrune.freedBytes, 1, 'lastPrune from the prune.finished event')
  t.equal(await metric(coord.url, 'gpuhost_coordinator_events_duplicate_total'), 1)
  ws.terminate()
  t.equal((await coord.stop()).code, 0, 'still running, stops cleanly')
})

t.test('keep-alive pings find a peer that went silent, on both sides', async (t) => {
  const coord = await startCoordinator(t, undefined, { pingIntervalSeconds: 1 })
  const agent = await startAgent(
    t,
    agentConfig(t, coord, 'gpu-node-t4', {
      coordinator: {
        url: coord.agentsUrl,
        tokenFile: coord.tokenFileFor('gpu-node-t4'),
        reconnectMaxSeconds: 1,
        pingIntervalSeconds: 1,
      },
    }),
  )
  const hostConnected = async () => (await coord.api('/v1/hosts/gpu-node-t4')).body.connected === true
  await waitFor('the host connected', hostConnected, 15_000, 100)

  // A frozen agent keeps its TCP connection open but answers no ping.
  process.kill(agent.pid, 'SIGSTOP')
  try {
    await waitFor('the coordinator to drop the silent agent', async () => !(await hostConnected()), 10_000, 100)
    t.pass('the coordinator closed the connection of an agent that stopped answering')
  } finally {
    process.kill(agent.pid, 'SIGCONT')
  }
  await waitFor('the agent back', hostConnected, 15_000, 100)

  process.kill(coord.pid, 'SIGSTOP')
  try {
    await waitFor(
      'the agent to notice the silent coordinator',
      () => /did not answer a ping/.test(agent.logs()),
      10_000,
      100,
    )
    t.pass('the agent closed the link to a coordinator that stopped answering')
  } finally {
    process.kill(coord.pid, 'SIGCONT')
  }
  await waitFor(
    'the link up again',
    async () => (await metric(agent.url, 'gpuhost_coordinator_connected')) === 1,
    15_000,
    100,
  )
  await agent.stop()
})

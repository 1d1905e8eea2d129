// Who may speak for a host: a per-host token speaks only for its host, the shared token only with
// agentAuth: shared, and a host with a live connection keeps it (a second one is refused and backs off).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAgent } from '../harness/agent.js'
import { startCoordinator, waitForCommand } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'
import { acked, frame, rawAgent } from '../support/raw-agent.js'

const NO_DOCKER = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }

t.test('no other credential can speak for a host, displace it, take its commands or store its results', async (t) => {
  const coord = await startCoordinator(t)
  const real = await startAgent(t, {
    ...NO_DOCKER,
    hostId: 'node-1',
    coordinator: {
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor('node-1'),
      reconnectMaxSeconds: 1,
      pingIntervalSeconds: 1,
    },
  })
  await waitFor(
    'node-1 connected',
    async () => (await coord.api('/v1/hosts/node-1')).body.connected === true,
    15_000,
    100,
  )

  // Another host's valid token: the hello as node-1 is refused with a close code saying why.
  const other = await rawAgent(coord, coord.tokenFor('node-2'))
  t.equal(other.opened, 101, "node-2's token opens a connection")
  other.ws.send(frame('node-1', 'hello', { version: '0.0.0', facts: {} }, 'forged-hello'))
  await waitFor('the impostor closed', () => other.closed() !== null, 10_000, 20)
  t.match(other.closed(), { code: 4001, reason: /node-1 is not the host of this credential/ })
  t.notOk(
    other.inbox.some((m) => m.type === 'ack'),
    'the forged hello was not acked',
  )
  await waitFor(
    'the refusal in the log',
    () => /refused a hello: the credential is another host's/.test(coord.logs()),
    10_000,
    50,
  )
  t.match(coord.logs(), /refused a hello: the credential is another host's/, 'the refusal is logged')

  // The shared token is refused outright in the default per-host mode; so is a token under another secret.
  t.equal((await rawAgent(coord, coord.agentToken)).opened, 401, 'the shared agent token: 401')
  const forged = `v1.${Buffer.from('node-1').toString('base64url')}.${Buffer.alloc(32).toString('base64url')}`
  t.equal((await rawAgent(coord, forged)).opened, 401, 'a made-up node-1 token: 401')
  const padded = `${coord.tokenFor('node-1')}==`
  t.equal((await rawAgent(coord, padded)).opened, 401, "node-1's own token with padding: 401")

  // A command for node-1 goes to the real node-1 and its result is the real one.
  const sent = await coord.api('/v1/hosts/node-1/commands', { body: { action: 'status' } })
  const done = await waitForCommand(coord, sent.body.commandId)
  t.match(done, { status: 'succeeded', result: { hostId: 'node-1' } }, 'node-1 ran its command')
  t.notOk(/coordinator link closed/.test(real.logs()), 'node-1 was never displaced')

  // With node-1 away, its next command waits; node-2's credential cannot answer it.
  await real.stop()
  await waitFor(
    'node-1 disconnected',
    async () => (await coord.api('/v1/hosts/node-1')).body.connected === false,
    15_000,
    100,
  )
  const waiting = (await coord.api('/v1/hosts/node-1/commands', { body: { action: 'status' } })).body.commandId
  const thief = await rawAgent(coord, coord.tokenFor('node-2'))
  thief.ws.send(frame('node-2', 'hello', { version: '0.0.0', facts: {} }, 'node-2-hello'))
  await waitFor(
    'node-2 accepted',
    () => thief.inbox.some((m) => m.type === 'ack' && m.ids.includes('node-2-hello')),
    10_000,
    20,
  )
  const forgedResult = { commandId: waiting, ok: true, result: { forged: true } }
  thief.ws.send(frame('node-1', 'command.result', forgedResult, 'forged-1'))
  thief.ws.send(frame('node-2', 'command.result', forgedResult, 'forged-2'))
  await waitFor(
    'both forged results answered',
    () =>
      thief.inbox.some((m) => m.ref === 'forged-1') &&
      thief.inbox.some((m) => m.type === 'ack' && m.ids.includes('forged-2')),
    10_000,
    20,
  )
  t.notOk(
    thief.inbox.some((m) => m.type === 'command'),
    "node-2 received none of node-1's commands",
  )
  t.match(
    (await coord.api(`/v1/commands/${waiting}`)).body,
    { status: 'pending', result: null },
    'no forged result was stored',
  )
  thief.ws.terminate()

  const back = await startAgent(t, {
    ...NO_DOCKER,
    hostId: 'node-1',
    coordinator: {
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor('node-1'),
      reconnectMaxSeconds: 1,
    },
  })
  const answered = await waitForCommand(coord, waiting)
  t.match(answered, { status: 'succeeded', result: { hostId: 'node-1' } }, 'the real node-1 answered it once back')
  t.notOk(JSON.stringify(answered.result).includes('forged'))
  await back.stop()
})

t.test('a second live connection for a host is refused and backs off; the first stays', async (t) => {
  const coord = await startCoordinator(t)
  const link = { url: coord.agentsUrl, tokenFile: coord.tokenFileFor('twin'), pingIntervalSeconds: 2 }
  const first = await startAgent(t, { ...NO_DOCKER, hostId: 'twin', coordinator: link })
  await waitFor(
    'the first twin connected',
    async () => (await coord.api('/v1/hosts/twin')).body.connected === true,
    15_000,
    100,
  )
  const second = await startAgent(t, { ...NO_DOCKER, hostId: 'twin', coordinator: link })
  const refusals = () => (second.logs().match(/the coordinator refused this connection/g) ?? []).length
  await waitFor('the second twin refused', () => refusals() >= 1, 15_000, 100)
  await sleep(10_000)
  const attempts = refusals()
  t.comment(`refusals of the second twin in about 10 s: ${attempts}`)
  t.ok(attempts >= 1 && attempts <= 6, `the refused twin backs off (${attempts} attempts in 10 s)`)
  t.notOk(/coordinator link closed/.test(first.logs()), 'the first twin was never closed')
  t.equal((await coord.api('/v1/hosts/twin')).body.connected, true, 'the host stays connected')
  const status = await (await fetch(`${second.url}/v1/status`)).json()
  t.match(
    status.coordinator,
    { connected: false, lastError: /4002.*already has a live connection/ },
    'the refused twin says why',
  )
  t.ok(
    status.coordinator.pending >= 1,
    `its events wait in its outbox (${status.coordinator.pending}), none refused away`,
  )
  const refusedTwin = /refused a second connection for a host that is connected and answering/
  await waitFor('the twin refusal in the log', () => refusedTwin.test(coord.logs()), 10_000, 50)
  t.match(coord.logs(), refusedTwin)
  const metrics = String((await coord.api('/metrics')).body)
  const refusedTotal = Number(/^gpuhost_coordinator_connections_refused_total (\S+)$/m.exec(metrics)?.[1])
  t.ok(refusedTotal >= 1, `counted in /metrics (${refusedTotal})`)
  await second.stop()
  await first.stop()
})

t.test('the shared token works only with agentAuth: shared, with a warning, and cannot displace a host', async (t) => {
  const coord = await startCoordinator(t, undefined, { agentAuth: 'shared' })
  t.match(coord.logs(), /agentAuth is shared/, 'a warning at start')
  const real = await startAgent(t, {
    ...NO_DOCKER,
    hostId: 'node-s',
    coordinator: {
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor('node-s'),
      reconnectMaxSeconds: 1,
    },
  })
  await waitFor(
    'node-s connected',
    async () => (await coord.api('/v1/hosts/node-s')).body.connected === true,
    15_000,
    100,
  )
  const shared = await rawAgent(coord, coord.agentToken)
  t.equal(shared.opened, 101, 'the shared token is accepted')
  shared.ws.send(frame('node-s', 'hello', { version: '0.0.0', facts: {} }))
  await waitFor('the shared-token twin closed', () => shared.closed() !== null, 15_000, 20)
  t.match(shared.closed(), { code: 4002 }, 'a live host is not displaced')
  t.notOk(/coordinator link closed/.test(real.logs()), 'node-s stays connected')
  await real.stop()
})

t.test('an Alertmanager repeat queues no second prune while one for the host has no result', async (t) => {
  const coord = await startCoordinator(t)
  const agent = await rawAgent(coord, coord.tokenFor('am-host.dc1.example'))
  agent.ws.send(frame('am-host.dc1.example', 'hello', { version: '0.0.0', facts: {} }, 'am-hello'))
  await waitFor('the host known', () => agent.inbox.some((m) => m.type === 'ack'), 10_000, 20)
  agent.ws.terminate()
  // As Alertmanager sends it (webhook v4); a repeat carries the same groupKey while the alert fires.
  const alert = (instance: string) => ({
    version: '4',
    groupKey: `{}:{instance="${instance}"}`,
    status: 'firing',
    receiver: 'gpuhost-prune',
    alerts: [
      { status: 'firing', labels: { alertname: 'DiskHigh', instance }, fingerprint: instance.length.toString(16) },
    ],
  })
  const payload = alert('am-host.dc1.example:9477')
  const first = await coord.api('/hooks/alertmanager', { body: payload })
  t.equal(first.body.commands.length, 1, 'the first alert queues a prune')
  const repeat = await coord.api('/hooks/alertmanager', { body: payload })
  t.same(repeat.body.commands, [], 'the repeat queues none')
  t.match(repeat.body.skipped, [{ reason: /a prune for am-host.dc1.example has no result yet/ }])
  const other = await coord.api('/hooks/alertmanager', { body: alert('am-host.dc2.example:9477') })
  t.match(
    other.body,
    { commands: [], skipped: [{ reason: 'no known host am-host.dc2.example' }] },
    'another domain is not this host',
  )
  t.equal((await coord.api('/v1/commands?hostId=am-host.dc1.example')).body.commands.length, 1, 'one prune in all')
})

t.test("a connection that stopped answering pings is replaced by the host's new one", async (t) => {
  const coord = await startCoordinator(t)
  const link = { url: coord.agentsUrl, tokenFile: coord.tokenFileFor('frozen'), pingIntervalSeconds: 2 }
  const old = await startAgent(t, { ...NO_DOCKER, hostId: 'frozen', coordinator: link })
  const connected = async () => (await coord.api('/v1/hosts/frozen')).body.connected === true
  await waitFor('the old agent connected', connected, 15_000, 100)
  process.kill(old.pid, 'SIGSTOP')
  try {
    const fresh = await startAgent(t, { ...NO_DOCKER, hostId: 'frozen', coordinator: link })
    const replaced = /stopped answering pings: replacing it|did not answer a ping/
    await waitFor('the silent connection replaced', () => replaced.test(coord.logs()), 20_000, 100)
    await waitFor(
      'the new agent accepted',
      () => /agent said hello/.test(coord.logs().split(replaced)[1] ?? ''),
      20_000,
      100,
    )
    t.equal(await connected(), true, 'the host is connected through the new agent')
    t.notMatch(fresh.logs(), /the coordinator refused this connection/, 'the new agent was not refused')
    const status = await (await fetch(`${fresh.url}/v1/status`)).json()
    t.match(status.coordinator, { connected: true, lastError: null })
  } finally {
    process.kill(old.pid, 'SIGCONT')
  }
  await old.stop()
})

t.test('an advertised peer URL is kept only at the address the hello came from, never link-local', async (t) => {
  const coord = await startCoordinator(t)
  const helloWith = async (hostId: string, url: string) => {
    const agent = await rawAgent(coord, coord.tokenFor(hostId))
    t.teardown(() => agent.ws.terminate())
    const peers = { url, maxUploads: 2 }
    agent.ws.send(frame(hostId, 'hello', { version: '0.0.0', facts: { peers } }, `${hostId}-hello`))
    await waitFor(
      `${hostId}'s hello acked`,
      () => agent.inbox.some((m) => m.type === 'ack' && m.ids.includes(`${hostId}-hello`)),
      15_000,
      20,
    )
    return (await coord.api(`/v1/hosts/${hostId}`)).body.peers
  }
  // The test's connections come from 127.0.0.1.
  t.same(await helloWith('peer-own', 'http://127.0.0.1:9479'), {
    url: 'http://127.0.0.1:9479',
    maxUploads: 2,
    key: 'host',
  })
  t.match(await helloWith('peer-named', 'http://gpu-7.fleet.example:9479'), { url: /gpu-7/ }, 'a hostname is kept')
  t.equal(await helloWith('peer-other', 'http://10.9.8.7:9479'), null, 'another IP address is refused')
  t.equal(await helloWith('peer-metadata', 'http://169.254.169.254:80'), null, 'link-local is refused')
  t.equal(await helloWith('peer-localhost', 'http://localhost:9477'), null, 'localhost is refused')
  t.equal(await helloWith('peer-sub-localhost', 'http://gpu-7.localhost:9477'), null, '*.localhost is refused')
  t.match(coord.logs(), /localhost names each fetcher's own loopback/, 'the localhost refusal says why')
  t.match(coord.logs(), /refused the peer URL a host advertised/, 'the refusal is logged')
})

/** the coordinator's resident memory in MiB, read from the kernel */
const rssMiB = (pid: number): number =>
  Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024

t.test('frames sent while a hello waits are held back by TCP, not in the coordinator', async (t) => {
  const coord = await startCoordinator(t)
  const token = coord.tokenFor('flood')
  // The host's first connection stays open and answers no ping, so a new hello waits on it (up to 5 s).
  const frozen = await rawAgent(coord, token, { autoPong: false })
  t.teardown(() => frozen.ws.terminate())
  frozen.ws.send(frame('flood', 'hello', { version: '0.0.0', facts: {} }, 'flood-hello-1'))
  await waitFor('the first hello acked', () => acked(frozen, 'flood-hello-1'), 15_000, 20)
  await sleep(3_000) // past the ping interval, so the coordinator must probe the frozen connection

  const before = rssMiB(coord.pid)
  const flooder = await rawAgent(coord, token)
  t.teardown(() => flooder.ws.terminate())
  flooder.ws.send(frame('flood', 'hello', { version: '0.0.0', facts: {} }, 'flood-hello-2'))
  // Frames just under the 4 × maxFrameBytes that ws accepts, as fast as the socket takes them, for 6 s.
  const big = frame('flood', 'event', { eventType: 'x', data: { pad: 'a'.repeat(4 * 1024 * 1024 - 300) } })
  let sent = 0
  let peak = before
  const started = Date.now()
  while (Date.now() - started < 6_000 && flooder.ws.readyState === flooder.ws.OPEN) {
    while (flooder.ws.bufferedAmount < 32 * 1024 * 1024) {
      flooder.ws.send(big)
      sent++
    }
    peak = Math.max(peak, rssMiB(coord.pid))
    await sleep(20)
  }
  t.comment(
    `coordinator RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB while ${sent} frames of 4 MiB ` +
      `were offered (${flooder.ws.bufferedAmount} bytes still unsent; closed: ${JSON.stringify(flooder.closed())})`,
  )
  t.ok(peak - before < 200, `the coordinator grew by ${(peak - before).toFixed(0)} MiB, not by what was sent`)
  t.equal((await coord.api('/healthz', { token: null })).status, 200, 'the coordinator still answers')
})

t.test("an agent's event of a type the coordinator raises (rollout.*) is refused and not stored", async (t) => {
  const coord = await startCoordinator(t)
  const agent = await rawAgent(coord, coord.tokenFor('forger'))
  t.teardown(() => agent.ws.terminate())
  agent.ws.send(frame('forger', 'hello', { version: '0.0.0', facts: {} }, 'forger-hello'))
  await waitFor('the hello acked', () => acked(agent, 'forger-hello'), 15_000, 20)
  agent.ws.send(frame('forger', 'event', { eventType: 'rollout.completed', data: { id: 'r-1' } }, 'forged-1'))
  agent.ws.send(frame('forger', 'event', { eventType: 'prune.completed', data: {} }, 'honest-1'))
  await waitFor('the honest event acked', () => acked(agent, 'honest-1'), 15_000, 20)
  t.match(
    agent.inbox.find((m) => m.type === 'error' && m.ref === 'forged-1'),
    { code: 'bad_message', message: /rollout\. prefix is reserved/ },
    'the forged event is answered with an error naming the reserved prefix',
  )
  t.notOk(acked(agent, 'forged-1'), 'and never acked')
  const events = (await coord.api('/v1/events?hostId=forger')).body.events
  t.ok(
    events.some((e: any) => e.type === 'prune.completed'),
    'the honest event is stored',
  )
  t.notOk(
    events.some((e: any) => e.type.startsWith('rollout.')),
    'no rollout.* event is stored for the host',
  )
})

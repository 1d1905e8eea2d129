// Two coordinator replicas on one private PostgreSQL, three real agents that know both. A command
// posted to one replica reaches a host connected to the other; then the replica the agents are on is
// killed with SIGKILL while they send events and a command is in flight: every event is stored once,
// the command gets its result, and the agents are on the survivor.
import t from 'tap'
import { post, startAgent, type RunningAgent } from '../harness/agent.js'
import {
  coordinatorSetup,
  replicaSetup,
  startCoordinator,
  waitForCommand,
  type RunningCoordinator,
} from '../harness/coordinator.js'
import { startPostgres } from '../harness/postgres.js'
import { waitFor } from '../harness/ports.js'
import { requireServices } from '../harness/services.js'

const NO_DOCKER = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }
const HOSTS = ['rep-0', 'rep-1', 'rep-2']

async function eventsOf(coord: RunningCoordinator, hostId: string, type: string): Promise<any[]> {
  return (await coord.api(`/v1/events?hostId=${hostId}&type=${type}&limit=10000`)).body.events
}

async function connectedHosts(coord: RunningCoordinator): Promise<string[]> {
  const { hosts } = (await coord.api('/v1/hosts')).body
  return hosts.filter((h: any) => h.connected).map((h: any) => h.hostId)
}

if (requireServices(t, ['/usr/lib/postgresql/15/bin/pg_ctl'])) {
  t.test('a replica killed mid-traffic loses nothing and leaves no command behind', async (t) => {
    const server = await startPostgres(t, { durable: false })
    const url = await server.createDatabase('fleet')
    const config = {
      store: { kind: 'postgres', url, heartbeatSeconds: 1 },
      pingIntervalSeconds: 2,
      commandTimeoutSeconds: 90,
    }
    const setupA = await coordinatorSetup(t)
    const a = await startCoordinator(t, setupA, config)
    const b = await startCoordinator(t, await replicaSetup(t, setupA), config)
    const agents: RunningAgent[] = []
    for (const hostId of HOSTS) {
      agents.push(
        await startAgent(t, {
          ...NO_DOCKER,
          hostId,
          coordinator: {
            url: [a.agentsUrl, b.agentsUrl],
            tokenFile: a.tokenFileFor(hostId),
            reconnectMaxSeconds: 1,
            pingIntervalSeconds: 2,
            resendSeconds: 2,
          },
        }),
      )
    }
    await waitFor('every agent connected', async () => (await connectedHosts(b)).length === 3, 30_000, 100)
    t.equal((await a.api('/metrics')).body.match(/^gpuhost_coordinator_agents_connected (\d+)/m)?.[1], '3', 'on A')

    const viaB = (await b.api(`/v1/hosts/rep-0/commands`, { body: { action: 'status' } })).body.commandId
    t.match(
      await waitForCommand(a, viaB),
      { status: 'succeeded', result: { hostId: 'rep-0' } },
      'posted to B, run via A',
    )

    // Alertmanager posts to B, twice (its repeat): one prune for rep-2, which is connected to A.
    const alert = {
      version: '4',
      groupKey: '{}:{alertname="GpuhostDiskHigh"}',
      status: 'firing',
      receiver: 'gpuhost-prune',
      alerts: [{ status: 'firing', labels: { alertname: 'GpuhostDiskHigh', instance: 'rep-2:9477' } }],
    }
    const [hook, repeat] = await Promise.all([
      b.api('/hooks/alertmanager', { body: alert }),
      a.api('/hooks/alertmanager', { body: alert }),
    ])
    t.equal(hook.status, 202)
    const made = [...hook.body.commands, ...repeat.body.commands]
    t.equal(made.length, 1, 'one prune for both posts')
    t.match([...hook.body.skipped, ...repeat.body.skipped], [{ reason: /a prune for rep-2 has no result yet/ }])
    const prune = await waitForCommand(a, made[0].commandId)
    t.ok(prune.status === 'succeeded' || prune.error, `the prune ran on rep-2 via A: ${prune.status} ${prune.error}`)

    // Each agent publishes prewarm.started and prewarm.finished per run, all the while.
    const runs = HOSTS.map(() => 0)
    const frozen = new Set<number>()
    let producing = true
    const producers = agents.map(async (agent, i) => {
      let n = 0
      while (producing) {
        if (frozen.has(i)) {
          await new Promise((r) => setTimeout(r, 50))
          continue
        }
        // Without Docker each run fails (an error answer), after publishing its started and finished events.
        await post(`${agent.url}/v1/prewarm`, agent.token, {
          images: [`example.invalid/${HOSTS[i]}-${n++}:1`],
          dryRun: true,
        })
        runs[i]++
      }
    })
    await waitFor('events flowing', async () => (await eventsOf(b, 'rep-2', 'prewarm.finished')).length >= 3, 30_000)

    // rep-1 is frozen: the command waits unread in its socket while A dies.
    frozen.add(1)
    await new Promise((r) => setTimeout(r, 200))
    process.kill(agents[1].pid, 'SIGSTOP')
    let inFlight: string
    try {
      inFlight = (await a.api('/v1/hosts/rep-1/commands', { body: { action: 'status' } })).body.commandId
      const status = async () => (await b.api(`/v1/commands/${inFlight}`)).body.status
      await waitFor('the command sent', async () => (await status()) === 'running', 10_000, 50)
      await a.stop('SIGKILL')
    } finally {
      process.kill(agents[1].pid, 'SIGCONT')
      frozen.delete(1)
    }
    await waitFor('every agent on the survivor', async () => (await connectedHosts(b)).length === 3, 60_000, 200)
    await new Promise((r) => setTimeout(r, 2000))
    producing = false
    await Promise.all(producers)

    const command = await waitForCommand(b, inFlight!)
    if (command.status === 'failed') t.ok(command.error, `failed with a reason: ${command.error}`)
    else t.match(command, { status: 'succeeded', result: { hostId: 'rep-1' } }, 'the in-flight command completed')

    for (const [i, hostId] of HOSTS.entries()) {
      await waitFor(
        `${hostId}: all ${runs[i]} runs stored`,
        async () => (await eventsOf(b, hostId, 'prewarm.finished')).length >= runs[i],
        60_000,
        200,
      )
      const started = await eventsOf(b, hostId, 'prewarm.started')
      const finished = await eventsOf(b, hostId, 'prewarm.finished')
      t.equal(finished.length, runs[i], `${hostId}: each of ${runs[i]} runs finished once`)
      t.equal(started.length, runs[i], `${hostId}: and started once`)
      t.equal((await eventsOf(b, hostId, 'agent.started')).length, 1, `${hostId}: one agent.started`)
      const all = (await b.api(`/v1/events?hostId=${hostId}&limit=10000`)).body.events
      t.equal(new Set(all.map((e: any) => e.id)).size, all.length, `${hostId}: no id twice`)
      t.match(
        agents[i].logs(),
        new RegExp(`"url":"${b.agentsUrl.replace(/[/.]/g, '\\$&')}"[^\\n]*coordinator reachable again`),
        `${hostId} reconnected to B`,
      )
    }
    t.ok(
      runs.every((n) => n > 0),
      `events sent by every agent: ${runs.join(', ')}`,
    )
    const metrics = (await b.api('/metrics')).body as string
    t.equal(metrics.match(/^gpuhost_coordinator_agents_connected (\d+)/m)?.[1], '3', 'all three on B')
    for (const agent of agents) await agent.stop()
  })
}

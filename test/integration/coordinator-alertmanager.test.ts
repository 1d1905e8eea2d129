// Debian's Alertmanager with the shipped receiver (config/alertmanager/gpuhost-receiver.yml)
// delivers a firing disk alert to the coordinator, which asks the host the alert names to prune.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT, startAgent } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { startAlertmanager } from '../harness/monitoring.js'
import { waitFor } from '../harness/ports.js'
import { requireServices } from '../harness/services.js'

if (requireServices(t, ['prometheus-alertmanager'])) {
  t.test('a firing alert becomes a prune command for the host it names', async (t) => {
    const coord = await startCoordinator(t)
    const agent = await startAgent(t, {
      hostId: 'gpu-node-am',
      docker: { socket: '/nonexistent/docker.sock' },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
      coordinator: { url: coord.agentsUrl, tokenFile: coord.tokenFileFor('gpu-node-am'), reconnectMaxSeconds: 1 },
    })
    await waitFor(
      'the host connected',
      async () => (await coord.api('/v1/hosts/gpu-node-am')).body.connected === true,
      15_000,
      100,
    )

    // The shipped receiver, pointed at this coordinator and its admin token, with no waiting.
    const shipped = parse(readFileSync(join(ROOT, 'config/alertmanager/gpuhost-receiver.yml'), 'utf8'))
    const webhook = shipped.receivers.find((r: { name: string }) => r.name === 'gpuhost-prune').webhook_configs[0]
    webhook.url = `${coord.url}/hooks/alertmanager`
    webhook.http_config.authorization.credentials_file = coord.adminTokenFile
    Object.assign(shipped.route.routes[0], { group_wait: '0s', group_interval: '1s' })
    const am = await startAlertmanager(t, shipped)

    const res = await fetch(`${am.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels: { alertname: 'GpuhostDiskHigh', gpuhost_action: 'prune', instance: 'gpu-node-am:9477' },
          startsAt: new Date().toISOString(),
        },
      ]),
    })
    t.equal(res.status, 200, 'Alertmanager took the alert')

    let commands: any[] = []
    await waitFor(
      'a prune command for the host',
      async () => {
        commands = (await coord.api('/v1/commands?hostId=gpu-node-am&action=prune')).body.commands
        return commands.length > 0
      },
      30_000,
      200,
    )
    t.equal(commands.length, 1, 'one prune for one firing alert')
    await waitFor(
      'the command to finish',
      async () =>
        ['succeeded', 'failed'].includes((await coord.api(`/v1/commands/${commands[0].commandId}`)).body.status),
      15_000,
      100,
    )
    t.notMatch(am.log(), /status code 401/, 'the admin token was accepted')
    await agent.stop()
  })
}

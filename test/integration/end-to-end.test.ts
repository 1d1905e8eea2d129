// The whole chain with the real programs: the private dockerd's loop disk is filled above the
// shipped alert's threshold, Prometheus scrapes the agent and fires, Alertmanager calls the agent's
// webhook, the agent prunes below its low watermark, and the coordinator records the prune.
import { eventPayloadSchemas, type EventType } from '../../src/protocol-events.js'
import t from 'tap'
import { readFileSync, statfsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { ROOT, startAgent, testDir } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { startAlertmanager, startPrometheus } from '../harness/monitoring.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { waitFor } from '../harness/ports.js'
import { requireServices } from '../harness/services.js'

const ALERT = 'GpuhostDockerDiskAboveHighWatermark'
const LOW_PERCENT = 60

function usedPercent(path: string): number {
  const s = statfsSync(path)
  return 100 * (1 - s.bavail / s.blocks)
}

/** The shipped rules, with the disk alert's `for` shortened so the test does not wait minutes. */
function rulesForTest(dir: string): string {
  const rules = parse(readFileSync(join(ROOT, 'config/prometheus/gpuhost-rules.yml'), 'utf8'))
  for (const group of rules.groups) for (const rule of group.rules) if (rule.alert === ALERT) rule.for = '0s'
  const file = join(dir, 'gpuhost-rules.yml')
  writeFileSync(file, stringify(rules))
  return file
}

/** The shipped receiver, pointed at this agent's webhook and token, with a short group_wait. */
function receiverForTest(agentUrl: string, tokenFile: string): object {
  const config = parse(readFileSync(join(ROOT, 'config/alertmanager/gpuhost-receiver.yml'), 'utf8'))
  for (const r of config.receivers) {
    for (const w of r.webhook_configs ?? []) {
      w.url = `${agentUrl}/hooks/alertmanager`
      w.http_config.authorization.credentials_file = tokenFile
    }
  }
  for (const route of config.route.routes) route.group_wait = '1s'
  return config
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'prometheus', 'prometheus-alertmanager'])) {
  t.test('disk alert to relief, through Prometheus, Alertmanager, the agent and the coordinator', async (t) => {
    const dir = testDir(t)
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const coordinator = await startCoordinator(t)
    const agent = await startAgent(
      t,
      {
        hostId: 'e2e-host',
        docker: { socket: dockerd.socket },
        gpu: {
          nvidiaSmi: fakeNvidiaSmi(t, { fixture: 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml' }),
          intervalSeconds: 30,
        },
        disk: { checkIntervalSeconds: 1 },
        // The watcher is off (100): only the alert may start this prune.
        prune: { highPercent: 100, lowPercent: LOW_PERCENT, minAgeSeconds: 0, schedule: null },
        prewarm: { schedule: null },
        coordinator: { url: coordinator.agentsUrl, tokenFile: coordinator.tokenFileFor('e2e-host') },
      },
      { waitReady: true },
    )
    const tokenFile = join(agent.configFile, '..', 'token')
    const alertmanager = await startAlertmanager(t, receiverForTest(agent.url, tokenFile))
    const prometheus = await startPrometheus(t, {
      targets: [agent.url.replace('http://', '')],
      ruleFiles: [rulesForTest(dir.path)],
      alertmanager: alertmanager.url,
      intervalSeconds: 2,
    })

    // Fill the disk with images nobody uses until it is above the alert's 85 %.
    let n = 0
    while (usedPercent(dockerd.mountpoint) <= 88) {
      makeImage(dockerd, { ref: `fill/layer${n}:v1`, sizeBytes: 16 * 1024 * 1024 })
      n++
      if (n > 20) throw new Error('could not fill the disk')
    }
    const crossedAt = Date.now()
    const filledPercent = usedPercent(dockerd.mountpoint)
    t.ok(filledPercent > 85, `filled to ${filledPercent.toFixed(1)} % with ${n} images`)

    await waitFor(
      `usage at or below ${LOW_PERCENT} %`,
      () => usedPercent(dockerd.mountpoint) <= LOW_PERCENT,
      120_000,
      250,
    )
    const reliefSeconds = (Date.now() - crossedAt) / 1000
    const after = usedPercent(dockerd.mountpoint)
    t.ok(after <= LOW_PERCENT, `usage after the prune: ${after.toFixed(1)} %`)
    t.comment(`threshold-to-relief: ${reliefSeconds.toFixed(1)} s (crossed 85 % -> at or below ${LOW_PERCENT} %)`)
    process.stdout.write(`# threshold-to-relief: ${reliefSeconds.toFixed(1)} s\n`)

    const alerts = await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()
    t.ok(
      alerts.data.alerts.some((a: { labels: { alertname: string } }) => a.labels.alertname === ALERT),
      'Prometheus fired the disk alert',
    )
    t.match(agent.logs(), /alertmanager/, 'the agent logged the webhook trigger')

    await waitFor(
      'the coordinator records the prune',
      async () => {
        const { body } = await coordinator.api('/v1/events?hostId=e2e-host&type=prune.finished')
        return body.events.some(
          (e: { data: { trigger?: string; dryRun?: boolean } }) => e.data.trigger === 'alertmanager' && !e.data.dryRun,
        )
      },
      30_000,
    )
    const { body } = await coordinator.api('/v1/events?hostId=e2e-host&type=prune.finished')
    const finished = body.events.find((e: { data: { trigger?: string } }) => e.data.trigger === 'alertmanager')
    t.ok(finished.data.freedBytes > 0, `the coordinator recorded ${finished.data.freedBytes} bytes freed`)
    const host = (await coordinator.api('/v1/hosts/e2e-host')).body
    t.ok(host.lastPrune, 'the host record shows the last prune')
    t.equal(host.gpu.driverVersion, '515.105.01', 'and the host driver from nvidia-smi')

    // Every event the coordinator stored has the payload its type's schema defines.
    const stored = (await coordinator.api('/v1/events?hostId=e2e-host&limit=1000')).body.events as {
      type: string
      data: unknown
    }[]
    t.ok(stored.length > 0, `${stored.length} events stored`)
    for (const e of stored) {
      const schema = eventPayloadSchemas[e.type as EventType]
      if (!schema) t.fail(`event type ${e.type} has no payload schema`)
      else if (!schema.safeParse(e.data).success)
        t.fail(`${e.type} payload does not match its schema: ${JSON.stringify(e.data)}`)
    }
    t.pass(`types seen: ${[...new Set(stored.map((e) => e.type))].join(', ')}`)
  })
}

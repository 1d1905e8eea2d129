// The agent's prune triggers end to end: the built agent, the inventory reading the private
// dockerd on a small loop disk, the durable usage record, and real images removed.
import t from 'tap'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startAgent, post, testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { daysAgo, fill, seedUsage, tagsOf, usageAndTarget } from '../support/prune-fixtures.js'
import { startAlertmanager } from '../support/alertmanager.js'

interface LastPrune {
  trigger: string
  result: string
  dryRun: boolean
  removedCount: number
  usedPercentAfter: number
}

async function lastPrune(url: string): Promise<LastPrune | null> {
  return (await (await fetch(`${url}/v1/status`)).json()).lastPrune
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'prometheus-alertmanager'])) {
  t.test(
    'the disk watcher prunes above the high watermark down to the low one, least recently used first',
    async (t) => {
      const dockerd = await startDockerd(t, { diskMiB: 300 })
      const ids = fill(dockerd, ['app/a:1', 'app/a:2', 'app/a:3', 'app/a:4', 'keep/x:1'])
      const state = join(testDir(t).path, 'state')
      seedUsage(state, {
        [ids['app/a:1']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(2) },
        [ids['app/a:2']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(9) },
        [ids['app/a:3']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(5) },
        [ids['app/a:4']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(1) },
        [ids['keep/x:1']]: { firstSeen: daysAgo(30), lastUsed: null },
      })
      const { usedPercent, target } = await usageAndTarget(dockerd, 1.5)
      const agent = await startAgent(
        t,
        {
          stateDir: state,
          docker: { socket: dockerd.socket },
          disk: { checkIntervalSeconds: 1 },
          gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
          prune: { highPercent: Math.floor(usedPercent) - 1, lowPercent: target, protect: ['keep/*'], schedule: null },
        },
        { waitReady: true },
      )
      await waitFor('a watcher prune', async () => (await lastPrune(agent.url))?.trigger === 'watcher', 60_000, 250)
      const last = (await lastPrune(agent.url))!
      t.match(last, { trigger: 'watcher', result: 'ok', dryRun: false, removedCount: 2 })
      t.ok(last.usedPercentAfter <= target, `usage ${usedPercent} % → ${last.usedPercentAfter} % (low ${target} %)`)
      t.same(
        tagsOf(dockerd),
        ['app/a:1', 'app/a:4', 'keep/x:1'],
        'the two least recently used went; the protected one stayed',
      )
      const metrics = await (await fetch(`${agent.url}/metrics`)).text()
      t.match(metrics, /gpuhost_prune_runs_total\{trigger="watcher",result="ok"\} 1/)
      t.match(metrics, /gpuhost_prune_images_removed_total 2/)
      t.match(agent.logs(), /"audit":"prune".*"outcome":"removed"/, 'audit lines in the log')
    },
  )

  t.test('POST /v1/prune and the Alertmanager webhook: token, body, dry run, prune', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const ids = fill(dockerd, ['app/b:1', 'app/b:2', 'app/b:3'])
    const state = join(testDir(t).path, 'state')
    seedUsage(
      state,
      Object.fromEntries(
        Object.entries(ids).map(([, id], i) => [id, { firstSeen: daysAgo(30), lastUsed: daysAgo(10 - i) }]),
      ),
    )
    const { target } = await usageAndTarget(dockerd, 0.5)
    const agent = await startAgent(
      t,
      {
        hostId: 'gpu-test-1',
        stateDir: state,
        docker: { socket: dockerd.socket },
        gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
        prune: { highPercent: 100, lowPercent: target, schedule: null },
      },
      { waitReady: true },
    )
    const all = tagsOf(dockerd)

    const dry = await post(`${agent.url}/v1/prune`, agent.token, { dryRun: true })
    t.equal(dry.status, 200)
    t.match(dry.body, { trigger: 'http', dryRun: true, removed: [] })
    t.same(
      dry.body.plan.map((p: { refs: string[] }) => p.refs),
      [['app/b:1']],
      'the dry run shows the plan',
    )
    t.same(tagsOf(dockerd), all, 'and removes nothing')
    t.equal((await post(`${agent.url}/v1/prune`, agent.token, { dryRun: 'yes' })).status, 400, 'a bad body: 400')
    t.match((await post(`${agent.url}/v1/prune`, agent.token, '{not json')).body.error, /not valid JSON/)

    const alert = {
      version: '4',
      groupKey: '{}:{alertname="DockerDiskFull"}',
      status: 'firing',
      receiver: 'gpuhost',
      truncatedAlerts: 0,
      groupLabels: { alertname: 'DockerDiskFull' },
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'http://127.0.0.1:9093',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'DockerDiskFull', hostId: 'gpu-test-1' },
          annotations: {},
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: '',
          fingerprint: '0123456789abcdef',
        },
      ],
    }
    const noToken = await post(`${agent.url}/hooks/alertmanager`, null, alert)
    t.equal(noToken.status, 401, 'without the token: 401')
    t.equal((await post(`${agent.url}/hooks/alertmanager`, 'wrong', alert)).status, 401, 'with a wrong token: 401')
    t.equal(
      (await post(`${agent.url}/hooks/alertmanager`, agent.token, { ...alert, version: '3' })).status,
      400,
      'a bad payload: 400',
    )
    const otherHost = {
      ...alert,
      alerts: [{ ...alert.alerts[0], labels: { alertname: 'DockerDiskFull', host: 'gpu-other' } }],
    }
    t.same(
      (await post(`${agent.url}/hooks/alertmanager`, agent.token, otherHost)).body.started,
      null,
      'an alert for another host starts nothing',
    )
    t.same(tagsOf(dockerd), all, 'nothing removed so far')
    t.equal((await lastPrune(agent.url))?.dryRun, true, 'no prune but the dry run has run')

    const accepted = await post(`${agent.url}/hooks/alertmanager`, agent.token, alert)
    t.equal(accepted.status, 202)
    t.match(accepted.body, {
      started: { action: 'prune', trigger: 'alertmanager', targetPercent: target },
      alerts: [{ decision: 'prune' }],
    })
    await waitFor('the alert prune', async () => (await lastPrune(agent.url))?.trigger === 'alertmanager', 30_000, 200)
    t.match(await lastPrune(agent.url), { trigger: 'alertmanager', result: 'ok', removedCount: 1 })
    t.same(tagsOf(dockerd), ['app/b:2', 'app/b:3'], 'the least recently used image went, down to the low watermark')
    const again = await post(`${agent.url}/hooks/alertmanager`, agent.token, alert)
    t.match(
      again.body,
      { started: null, alerts: [{ decision: 'duplicate' }] },
      'the repeat of the same alert starts nothing',
    )
  })

  t.test(
    'a real Alertmanager delivers a firing alert with the token: the agent prunes to the low watermark',
    async (t) => {
      const dockerd = await startDockerd(t, { diskMiB: 300 })
      const ids = fill(dockerd, ['app/c:1', 'app/c:2'])
      const state = join(testDir(t).path, 'state')
      seedUsage(state, {
        [ids['app/c:1']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(2) },
        [ids['app/c:2']]: { firstSeen: daysAgo(29), lastUsed: daysAgo(1) },
      })
      const { target } = await usageAndTarget(dockerd, 0.5)
      const agent = await startAgent(
        t,
        {
          hostId: 'gpu-am-1',
          stateDir: state,
          docker: { socket: dockerd.socket },
          gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
          prune: { highPercent: 100, lowPercent: target, schedule: null },
        },
        { waitReady: true },
      )
      const wrong = await startAlertmanager(t, { url: `${agent.url}/hooks/alertmanager`, token: 'not-the-token' })
      await wrong.fire({ alertname: 'DockerDiskFull', hostId: 'gpu-am-1' })
      await waitFor('the refused delivery', () => /401/.test(wrong.log()), 30_000, 250)
      t.same(tagsOf(dockerd), ['app/c:1', 'app/c:2'], 'a delivery with the wrong token removed nothing')
      t.equal(await lastPrune(agent.url), null, 'and started no prune')

      const right = await startAlertmanager(t, { url: `${agent.url}/hooks/alertmanager`, token: agent.token })
      await right.fire({ alertname: 'DockerDiskFull', hostId: 'gpu-am-1' })
      await waitFor(
        'the alert prune',
        async () => (await lastPrune(agent.url))?.trigger === 'alertmanager',
        30_000,
        250,
      )
      t.match(await lastPrune(agent.url), { trigger: 'alertmanager', result: 'ok', removedCount: 1 })
      t.same(tagsOf(dockerd), ['app/c:2'], 'the least recently used image went')
    },
  )
}

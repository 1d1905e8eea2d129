// The prewarm at start against real parts: the built agent, a private dockerd, a registry. A
// wanted image missing at start is pulled without waiting for the schedule; an agent restarted
// again and again while the registry is down tries it once, not on every start.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { startAgent, testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'

const MiB = 1024 * 1024

async function wantedMetric(url: string, state: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`gpuhost_prewarm_wanted_images{state="${state}"}`))
  return line ? Number(line.split(' ').pop()) : null
}

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('missing wanted images are prewarmed at start; a restart loop does not pull on every start', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 200 })
    const registry = await startRegistry(t)
    makeImage(dockerd, { ref: 'team/start:1', sizeBytes: 2 * MiB })
    const image = pushImage(dockerd, 'team/start:1', registry.host)
    dockerd.docker(['rmi', 'team/start:1'])
    const hasImage = () => dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).includes(image)
    const state = join(testDir(t).path, 'state')
    const config = {
      stateDir: state,
      docker: { socket: dockerd.socket },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi', timeoutSeconds: 1 },
      prune: { schedule: null },
      // no schedule: only the start can pull it
      prewarm: { schedule: null, images: [image], retries: 0 },
    }

    const first = await startAgent(t, config, { waitReady: true })
    await waitFor('the image pulled at start', async () => hasImage(), 60_000, 250)
    await waitFor(
      'the start prewarm reported',
      async () => (await (await fetch(`${first.url}/v1/status`)).json()).lastPrewarm?.trigger === 'start',
      60_000,
      250,
    )
    await waitFor('wanted present in /metrics', async () => (await wantedMetric(first.url, 'present')) === 1, 30_000)
    t.equal(await wantedMetric(first.url, 'missing'), 0)
    await first.stop()

    // The image is gone and the registry down: every start would fail the same way.
    dockerd.docker(['rmi', image])
    await registry.stop()
    const backoffFile = join(state, 'prewarm-backoff.json')
    const second = await startAgent(t, config, { waitReady: true })
    await waitFor('the attempt recorded', async () => existsSync(backoffFile), 30_000, 100)
    await waitFor(
      'the failed start prewarm reported',
      async () => (await (await fetch(`${second.url}/v1/status`)).json()).lastPrewarm?.trigger === 'start',
      60_000,
      250,
    )
    t.equal(JSON.parse(readFileSync(backoffFile, 'utf8')).images[image].attempts, 1)
    await second.stop()

    for (let i = 0; i < 3; i++) {
      const again = await startAgent(t, config, { waitReady: true })
      await waitFor(
        'the start looked and waited',
        async () => /not tried again on this start/.test(again.logs()),
        30_000,
      )
      const status = await (await fetch(`${again.url}/v1/status`)).json()
      t.equal(status.lastPrewarm ?? null, null, `restart ${i + 1}: no prewarm ran`)
      t.equal(await wantedMetric(again.url, 'missing'), 1, 'the metric says the wanted image is missing')
      await again.stop()
    }
    t.equal(JSON.parse(readFileSync(backoffFile, 'utf8')).images[image].attempts, 1, 'still one attempt on record')
  })
}

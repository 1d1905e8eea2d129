// The prewarm's wanted set against a real prune: the built agent, a private dockerd on its own
// small loop disk, real images removed. A wanted image that was never run (the first in LRU order
// otherwise) survives a prune that removed everything else; out of the set, it is eligible again.
import t from 'tap'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startAgent, post, testDir } from '../harness/agent.js'
import { daysAgo, fill, seedUsage, tagsOf } from '../support/prune-fixtures.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('a prewarmed, never-run image survives a prune that removed everything else eligible', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const ids = fill(dockerd, ['app/a:1', 'app/a:2', 'app/a:3', 'warm/w:1'])
    const state = join(testDir(t).path, 'state')
    seedUsage(state, {
      [ids['app/a:1']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(3) },
      [ids['app/a:2']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(2) },
      [ids['app/a:3']]: { firstSeen: daysAgo(30), lastUsed: daysAgo(1) },
      // pulled by prewarm a month ago and never run: without the wanted set, the first to go
      [ids['warm/w:1']]: { firstSeen: daysAgo(30), lastUsed: null },
    })
    const config = {
      stateDir: state,
      docker: { socket: dockerd.socket },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
      prune: { highPercent: 100, schedule: null, schedules: [{ name: 'deep', cron: '0 4 * * 0', deep: true }] },
      prewarm: { schedule: null, images: ['warm/w:1'] },
    }
    const agent = await startAgent(t, config, { waitReady: true })

    const dry = await post(`${agent.url}/v1/prune`, agent.token, { dryRun: true, targetPercent: 1 })
    t.equal(dry.status, 200)
    const keptReason = (body: { kept: { refs: string[]; reason: string }[] }) =>
      body.kept.find((k) => k.refs.includes('warm/w:1'))?.reason
    t.equal(keptReason(dry.body), 'wanted by prewarm', 'the dry run names the reason')

    const real = await post(`${agent.url}/v1/prune`, agent.token, { targetPercent: 1 })
    t.equal(real.status, 200)
    t.equal(real.body.result, 'not_enough', 'the wanted image alone does not fit under the target')
    t.same(
      real.body.removed.map((r: { refs: string[] }) => r.refs[0]).sort(),
      ['app/a:1', 'app/a:2', 'app/a:3'],
      'everything else eligible was removed',
    )
    t.equal(keptReason(real.body), 'wanted by prewarm')
    t.same(tagsOf(dockerd), ['warm/w:1'], 'the prewarmed image is still on disk')
    t.match(agent.logs(), /"wanted":\["warm\/w:1"\].*prune could not free enough/, 'the log names the wanted image')
    t.equal(real.body.heldBy[0].kind, 'images_wanted', 'what holds the space: the wanted image')
    t.match(agent.logs(), /most of the space is held by images_wanted/)

    // A named schedule's rules on demand; an unknown name is refused before anything runs.
    const unknown = await post(`${agent.url}/v1/prune`, agent.token, { schedule: 'weekly', dryRun: true })
    t.equal(unknown.status, 400)
    t.match(unknown.body.error, /no prune schedule named "weekly" \(prune.schedules: deep\)/)
    const named = await post(`${agent.url}/v1/prune`, agent.token, { schedule: 'deep', dryRun: true })
    t.match(named, { status: 200, body: { schedule: 'deep', deep: true, dryRun: true } })
    await agent.stop()

    // Taken out of the wanted set: the same state, the same image, now eligible.
    const again = await startAgent(t, { ...config, prewarm: { schedule: null, images: [] } }, { waitReady: true })
    const after = await post(`${again.url}/v1/prune`, again.token, { dryRun: true, targetPercent: 1 })
    t.same(
      after.body.plan.map((p: { refs: string[] }) => p.refs),
      [['warm/w:1']],
      'no longer wanted: planned for removal',
    )
    const gone = await post(`${again.url}/v1/prune`, again.token, { targetPercent: 1 })
    t.same(
      gone.body.removed.map((r: { refs: string[] }) => r.refs[0]),
      ['warm/w:1'],
    )
    t.same(tagsOf(dockerd), [], 'and a real prune removes it')
  })
}

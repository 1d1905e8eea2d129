// `gpuhost prune` as users run it: the built CLI against the private dockerd, ordered by the same
// durable usage record the agent keeps, with --dry-run, --json, the human table and exit codes.
import t from 'tap'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { runCli, testDir } from '../harness/agent.js'
import { makeRunnableImage } from '../support/docker-images.js'
import { daysAgo, fill, seedUsage, tagsOf, usageAndTarget } from '../support/prune-fixtures.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('gpuhost prune: dry run, real run, not enough, Docker away', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const ids = fill(dockerd, ['ml/train:1', 'ml/train:2', 'ml/train:3', 'ml/train:4', 'pinned/x:1', 'fresh/x:1'])
    ids['used/x:1'] = makeRunnableImage(dockerd, 'used/x:1')
    dockerd.docker(['run', '--network', 'none', 'used/x:1', '0'])
    const dir = testDir(t)
    const state = join(dir.path, 'state')
    const old = { firstSeen: daysAgo(40), lastUsed: null }
    // Docker lists creation times in whole seconds: first-seen times in creation order break the ties.
    seedUsage(state, {
      [ids['ml/train:1']]: { firstSeen: daysAgo(39), lastUsed: daysAgo(3) },
      [ids['ml/train:2']]: { firstSeen: daysAgo(38), lastUsed: daysAgo(20) },
      [ids['ml/train:3']]: { firstSeen: daysAgo(37), lastUsed: daysAgo(7) },
      [ids['ml/train:4']]: { firstSeen: daysAgo(36), lastUsed: daysAgo(1) },
      [ids['pinned/x:1']]: old,
      [ids['used/x:1']]: old,
      // fresh/x:1 is not in the record: first seen now, too young
    })
    const { target } = await usageAndTarget(dockerd, 1.5)
    const config = dir.file(
      'agent.yaml',
      stringify({
        stateDir: state,
        docker: { socket: dockerd.socket },
        tokenFile: null,
        prune: { lowPercent: target, highPercent: 99, protect: ['pinned/*'], keepPerRepository: 1, schedule: null },
      }),
    )
    const all = tagsOf(dockerd)

    const dry = runCli(['--json', 'prune', '--dry-run', '--config', config])
    t.equal(dry.code, 0, dry.stderr)
    const plan = JSON.parse(dry.stdout)
    t.match(plan, { trigger: 'cli', dryRun: true, removed: [], skipped: [] })
    t.same(
      plan.plan.map((p: { refs: string[] }) => p.refs[0]),
      ['ml/train:2', 'ml/train:3'],
      'least recently used first, by the durable record',
    )
    t.same(tagsOf(dockerd), all, '--dry-run removed nothing')
    const reasons = Object.fromEntries(plan.kept.map((k: { refs: string[]; reason: string }) => [k.refs[0], k.reason]))
    t.equal(reasons['used/x:1'], 'in use by a container', 'an exited container keeps its image')
    t.equal(reasons['pinned/x:1'], 'protected by "pinned/*"')
    t.match(reasons['fresh/x:1'], /younger than minAgeSeconds/, 'an image the record never saw is first seen now')
    t.equal(reasons['ml/train:4'], 'among the newest 1 of ml/train')

    const human = runCli(['prune', '--dry-run', '--config', config])
    t.equal(human.code, 0)
    t.match(human.stdout, /would remove \(2 images/)
    t.match(human.stdout, /ml\/train:2 .*least recently used/)

    const real = runCli(['--json', 'prune', '--config', config])
    t.equal(real.code, 0, real.stderr)
    const report = JSON.parse(real.stdout)
    t.same(report.plan, plan.plan, 'the real run planned what the dry run listed')
    t.same(
      report.removed.map((p: { refs: string[] }) => p.refs[0]),
      ['ml/train:2', 'ml/train:3'],
    )
    t.ok(
      report.enough && report.after.usedPercent <= target,
      `usage now ${report.after.usedPercent} % (target ${target} %)`,
    )
    t.ok(report.freedBytes >= report.needBytes)
    t.same(
      tagsOf(dockerd),
      all.filter((r) => r !== 'ml/train:2' && r !== 'ml/train:3'),
    )
    t.match(real.stderr, /"audit":"prune".*"outcome":"removed"/, 'audit lines on stderr')

    const cannot = runCli(['prune', '--target-percent', '0', '--config', config])
    t.equal(cannot.code, 1, 'could not free enough: exit 1')
    t.match(cannot.stdout, /NOT ENOUGH/)
    t.equal(
      runCli(['prune', '--target-percent', 'lots', '--config', config]).code,
      2,
      'a bad --target-percent is a usage error',
    )

    const away = dir.file(
      'away.yaml',
      stringify({ stateDir: state, docker: { socket: join(dir.path, 'none.sock') }, tokenFile: null }),
    )
    const unreachable = runCli(['prune', '--config', away])
    t.equal(unreachable.code, 69, 'Docker unreachable: exit 69')
    t.match(
      unreachable.stderr,
      /Docker is unreachable.*\n {2}no socket at \S+none\.sock: start Docker, or set docker\.socket/,
    )
  })
}

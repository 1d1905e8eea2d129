// prune.protectLabels on a private dockerd through the CLI: an image carrying a protecting label
// (the image config's LABEL, as compose's build labels or a Dockerfile set it) stays when the
// budget rule takes every other old image; a label with another value does not protect.
import t from 'tap'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { runCli, testDir } from '../harness/agent.js'
import { makeImage } from '../harness/images.js'
import { daysAgo, seedUsage, tagsOf } from '../support/prune-fixtures.js'

const MiB = 1024 * 1024

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('an image with a protecting label stays', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const ids = {
      plain: makeImage(dockerd, { ref: 'ml/plain:1', sizeBytes: 2 * MiB }),
      kept: makeImage(dockerd, { ref: 'ml/kept:1', sizeBytes: 2 * MiB, labels: { 'gpuhost.keep': 'true' } }),
      project: makeImage(dockerd, {
        ref: 'models/resnet:1',
        sizeBytes: 2 * MiB,
        labels: { 'com.docker.compose.project': 'models' },
      }),
      other: makeImage(dockerd, {
        ref: 'other/bert:1',
        sizeBytes: 2 * MiB,
        labels: { 'com.docker.compose.project': 'scratch' },
      }),
    }
    const dir = testDir(t)
    const state = join(dir.path, 'state')
    const old = { firstSeen: daysAgo(40), lastUsed: null }
    seedUsage(state, Object.fromEntries(Object.values(ids).map((id) => [id, old])))
    const config = dir.file(
      'agent.yaml',
      stringify({
        stateDir: state,
        docker: { socket: dockerd.socket },
        tokenFile: null,
        // a one-byte budget: every image that may go, goes
        prune: {
          maxImageBytes: 1,
          schedule: null,
          protectLabels: ['gpuhost.keep', 'com.docker.compose.project=models'],
        },
      }),
    )
    const dry = runCli(['--json', 'prune', '--dry-run', '--config', config])
    t.equal(dry.code, 0, dry.stderr)
    const reasons = Object.fromEntries(
      JSON.parse(dry.stdout).kept.map((k: { refs: string[]; reason: string }) => [k.refs[0], k.reason]),
    )
    t.equal(reasons['ml/kept:1'], 'protected by label gpuhost.keep')
    t.equal(reasons['models/resnet:1'], 'protected by label com.docker.compose.project=models')

    const real = runCli(['--json', 'prune', '--config', config])
    t.equal(real.code, 0, real.stderr)
    t.same(
      JSON.parse(real.stdout)
        .removed.map((p: { refs: string[] }) => p.refs[0])
        .sort(),
      ['ml/plain:1', 'other/bert:1'],
    )
    t.same(tagsOf(dockerd), ['ml/kept:1', 'models/resnet:1'])
  })
}

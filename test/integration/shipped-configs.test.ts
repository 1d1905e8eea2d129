// The Prometheus rules and the Alertmanager receiver that users install must pass the tools'
// own checks, and the rules their unit tests.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from '../harness/agent.js'
import { requireServices } from '../harness/services.js'

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', cwd: join(ROOT, 'config') })

if (requireServices(t, ['promtool', 'amtool'])) {
  t.test('promtool check rules', async (t) => {
    const r = run('promtool', ['check', 'rules', 'prometheus/gpuhost-rules.yml'])
    t.equal(r.status, 0, r.stdout + r.stderr)
    t.match(r.stdout, /SUCCESS: 11 rules found/)
  })
  t.test('promtool test rules', async (t) => {
    const r = run('promtool', ['test', 'rules', 'prometheus/gpuhost-rules.test.yml'])
    t.equal(r.status, 0, r.stdout + r.stderr)
  })
  t.test('amtool check-config', async (t) => {
    const r = run('amtool', ['check-config', 'alertmanager/gpuhost-receiver.yml'])
    t.equal(r.status, 0, r.stdout + r.stderr)
  })
}

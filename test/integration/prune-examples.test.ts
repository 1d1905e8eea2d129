// The example Prometheus rules and Alertmanager receiver in config/ pass their own tools' checks.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { ROOT } from '../harness/agent.js'

if (requireServices(t, ['promtool', 'amtool'])) {
  t.test('promtool accepts the alert rules', async (t) => {
    const out = execFileSync('promtool', ['check', 'rules', join(ROOT, 'config', 'prometheus-gpuhost-rules.yml')], { encoding: 'utf8' })
    t.match(out, /SUCCESS: 2 rules found/)
  })
  t.test('amtool accepts the receiver', async (t) => {
    const out = execFileSync('amtool', ['check-config', join(ROOT, 'config', 'alertmanager-gpuhost.yml')], { encoding: 'utf8' })
    t.match(out, /SUCCESS/)
    t.match(out, /2 receivers/)
  })
}

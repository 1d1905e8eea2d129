// The shipped units must pass systemd's own checks: verify clean, exposure at most 2.0.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../harness/agent.js'
import { which, integrationRequired } from '../harness/services.js'

const units = readdirSync(join(ROOT, 'systemd')).filter((f) => f.endsWith('.service'))

if (!which('systemd-analyze')) {
  if (integrationRequired()) t.fail('systemd-analyze is missing (Debian package systemd)')
  else t.plan(0, 'skipped: needs systemd-analyze')
} else {
  for (const unit of units) {
    t.test(unit, async (t) => {
      const path = join(ROOT, 'systemd', unit)
      const verify = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' })
      t.equal(verify.status, 0, 'systemd-analyze verify exits 0')
      t.equal(verify.stderr.trim(), '', 'and prints no warning')
      const security = spawnSync('systemd-analyze', ['security', '--offline=true', path], { encoding: 'utf8' })
      const m = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)
      t.ok(m, 'security prints an exposure level')
      t.ok(Number(m?.[1]) <= 2.0, `exposure ${m?.[1]} is at most 2.0`)
    })
  }
}

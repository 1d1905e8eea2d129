// `npm start`, the installed `gpuhost` command and the tests must all run the same built file.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, ROOT } from '../harness/agent.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))

t.equal(join(ROOT, pkg.bin.gpuhost), CLI, 'bin.gpuhost is the CLI the tests run')
t.ok(existsSync(CLI), `${pkg.bin.gpuhost} exists after the build`)
t.match(readFileSync(CLI, 'utf8'), /^#!\/usr\/bin\/env node/, 'and starts with a node shebang')
t.match(
  pkg.scripts.start,
  new RegExp(`node (--[a-z-]+=\\S+ )*${pkg.bin.gpuhost.replace('.', '\\.')} agent --config config/agent\\.yaml`),
  'npm start runs it on config/agent.yaml',
)
for (const unit of ['gpuhost-agent.service', 'gpuhost-coordinator.service']) {
  const text = readFileSync(join(ROOT, 'systemd', unit), 'utf8')
  t.match(
    text,
    new RegExp(`ExecStart=/usr/bin/node /opt/gpuhost/${pkg.bin.gpuhost.replace('.', '\\.')} `),
    `${unit} starts the same file`,
  )
}

// Every agent configuration the project ships (package, container, compose example) loads with the
// one schema: a renamed or misspelt key fails here, not on a host.
import t from 'tap'
import { join } from 'node:path'
import { loadAgentConfig } from '../../src/config.js'
import { ROOT } from '../harness/agent.js'

const FILES = {
  'packaging/deb/agent.yaml': { stateDir: '/var/lib/gpuhost', tokenFile: '/etc/gpuhost/token' },
  'deploy/container/agent.yaml': { listen: '0.0.0.0:9477', tokenFile: '/run/secrets/gpuhost-token' },
  'deploy/compose/gpuhost.yaml': { listen: '0.0.0.0:9477', stateDir: '/var/lib/gpuhost' },
}

for (const [file, expected] of Object.entries(FILES)) {
  t.test(file, async (t) => {
    t.match(loadAgentConfig(join(ROOT, file)), expected)
  })
}

// A removal journal that cannot be read (a torn write from an older version, a disk error) does not
// stop the agent: it starts, answers /healthz, and says the interrupted removals were not recovered.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startAgent, testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { REMOVAL_JOURNAL } from '../../src/runtime/removal-journal.js'

t.test('a damaged removal journal is reported, and the agent runs', async (t) => {
  const state = join(testDir(t).path, 'state')
  mkdirSync(state, { recursive: true })
  writeFileSync(join(state, REMOVAL_JOURNAL), '{"removals": {"sha256:ab')
  const agent = await startAgent(t, {
    stateDir: state,
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
    prune: { highPercent: 100, schedule: null },
    prewarm: { schedule: null },
  })
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'the agent runs')
  await waitFor('the recovery reported', () => /not recovered now/.test(agent.logs()), 30_000, 100)
  t.match(agent.logs(), /interrupted removals not recovered now/)
})

// The "prune" action the coordinator (and POST /v1/prune) invoke: registered by the prune feature,
// args validated with the same schema, run through the same job, reported on the same bus.
import t from 'tap'
import { pino } from 'pino'
import { Agent } from '../../src/agent/agent.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { createPruneFeature } from '../../src/prune/feature.js'
import type { AgentEvent } from '../../src/core/events.js'
import { InvalidRequestError } from '../../src/errors.js'

t.test('the coordinator can invoke prune; bad args are refused with the reason', async (t) => {
  const config = parseConfig(agentConfigSchema, {
    tokenFile: null,
    stateDir: t.testdir(),
    docker: { socket: '/nonexistent.sock' },
    prune: { schedule: null },
  })
  const agent = new Agent(config, pino({ level: 'silent' }), [createPruneFeature()])
  t.ok(agent.ctx.actions.has('prune'))
  const events: AgentEvent[] = []
  agent.ctx.bus.subscribe((e) => events.push(e))
  await t.rejects(agent.ctx.actions.dispatch('prune', { dryRun: 'yes' }, 'coordinator'), InvalidRequestError)
  await t.rejects(agent.ctx.actions.dispatch('prune', { dryRun: 'yes' }, 'coordinator'), /bad prune request: dryRun:/)
  const report = await agent.ctx.actions.invoke('prune', { dryRun: true }, 'coordinator')
  t.match(report, { trigger: 'coordinator', result: 'error', joined: false })
  t.match(report.error ?? '', /images are not known yet/, 'before the inventory has run, it says so')
  t.same(
    events.map((e) => [
      e.type,
      'trigger' in e.data ? e.data.trigger : undefined,
      'result' in e.data ? e.data.result : undefined,
    ]),
    [
      ['prune.started', 'coordinator', undefined],
      ['prune.finished', 'coordinator', 'error'],
    ],
    'started and finished, even when it could not run',
  )
})

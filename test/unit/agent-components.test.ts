// The agent keeps running when one feature's component cannot start: /v1/status lists it with
// its error, a component.failed event says so, and once a retry starts it the list is empty.
import t from 'tap'
import { pino } from 'pino'
import { Agent } from '../../src/agent/agent.js'
import type { Feature } from '../../src/core/feature.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import type { AgentEvent } from '../../src/core/events.js'
import { CollectorLoop } from '../../src/core/collector.js'

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 6000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
  if (!cond()) throw new Error(`gave up waiting for ${what}`)
}

t.test('a feature whose component fails to start does not stop the agent', async (t) => {
  let starts = 0
  const flaky: Feature = () => ({
    components: [
      {
        name: 'flaky-source',
        async start() {
          if (++starts <= 2) throw new Error('source not there yet')
        },
        async stop() {},
      },
    ],
    collectors: ['flaky'],
  })
  const config = parseConfig(agentConfigSchema, { tokenFile: null, listen: '127.0.0.1:0', stateDir: t.testdir() })
  const agent = new Agent(config, pino({ level: 'silent' }), [flaky])
  const events: AgentEvent[] = []
  agent.ctx.bus.subscribe((e) => events.push(e))
  t.teardown(() => agent.stop())

  await agent.start()
  t.ok(
    events.some((e) => e.type === 'agent.started'),
    'the agent started',
  )
  t.match(agent.status().failingComponents, [{ component: 'flaky-source', attempts: 1, error: 'source not there yet' }])
  t.match(events.find((e) => e.type === 'component.failed')?.data, { component: 'flaky-source', attempt: 1 })
  t.notOk(agent.ctx.store.ready(), 'readiness waits for the collector the feature declared')

  await until('the component to start', () => starts === 3 && agent.status().failingComponents.length === 0)
  t.same(agent.status().failingComponents, [])
})

t.test('a collector that fails and recovers is one collector.failed and one collector.recovered', async (t) => {
  const outcomes = [false, false, false, true, true]
  let run = 0
  const source: Feature = (ctx) => {
    const loop = new CollectorLoop(
      {
        name: 'flaky',
        async collect() {
          if (!outcomes[Math.min(run++, outcomes.length - 1)]) throw new Error('source unreadable')
        },
      },
      5,
      ctx.store,
      ctx.log,
      ctx.now,
    )
    return { components: [loop], collectors: ['flaky'] }
  }
  const config = parseConfig(agentConfigSchema, { tokenFile: null, listen: '127.0.0.1:0', stateDir: t.testdir() })
  const agent = new Agent(config, pino({ level: 'silent' }), [source])
  const events: AgentEvent[] = []
  agent.ctx.bus.subscribe((e) => events.push(e))
  t.teardown(() => agent.stop())
  await agent.start()
  await until('five collector runs', () => run >= 5)

  const collectorEvents = events.filter((e) => e.type.startsWith('collector.'))
  t.match(collectorEvents, [
    { type: 'collector.failed', data: { collector: 'flaky', error: 'source unreadable' } },
    { type: 'collector.recovered', data: { collector: 'flaky', failures: 3 } },
  ])
  t.equal(collectorEvents.length, 2, 'once per change, not once per run')
  await agent.stop()
  t.equal(events.at(-1)?.type, 'agent.stopping', 'an orderly stop is an event')
})

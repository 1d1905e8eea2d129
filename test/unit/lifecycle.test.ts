// A component whose start fails does not end the agent: the failure is logged, published as
// component.failed, shown in status, and the start is retried with backoff until it succeeds.
import t from 'tap'
import { pino } from 'pino'
import { Lifecycle, type Component } from '../../src/core/lifecycle.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'

/** fails its first `failures` starts, then starts */
function flaky(name: string, failures: number): Component & { starts: number; running: boolean } {
  return {
    name,
    starts: 0,
    running: false,
    async start() {
      this.starts++
      if (this.starts <= failures) throw new Error(`${name} cannot start yet (try ${this.starts})`)
      this.running = true
    },
    async stop() {
      this.running = false
    },
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
  if (!cond()) throw new Error(`gave up waiting for ${what}`)
}

t.test('a component that fails twice is reported, retried, and then runs', async (t) => {
  const bus = new EventBus()
  const events: AgentEvent[] = []
  bus.subscribe((e) => events.push(e))
  const lifecycle = new Lifecycle(
    pino({ level: 'silent' }),
    {
      failed: (f) => bus.publish('component.failed', f),
      started: (s) => bus.publish('component.started', s),
    },
    { baseMs: 20, maxMs: 40 },
  )
  const broken = flaky('broken', 2)
  const healthy = flaky('healthy', 0)

  await lifecycle.startRetrying([broken, healthy])
  t.ok(healthy.running, 'the components after it start at once')
  t.notOk(broken.running)
  t.match(lifecycle.failingComponents(), [{ component: 'broken', attempts: 1, error: /cannot start yet \(try 1\)/ }])

  await until('the third start', () => broken.running)
  t.equal(broken.starts, 3)
  t.same(lifecycle.failingComponents(), [], 'no longer reported once it runs')
  const failed = events.filter((e) => e.type === 'component.failed')
  t.match(
    failed.map((e) => e.data),
    [
      { component: 'broken', attempt: 1 },
      { component: 'broken', attempt: 2 },
    ],
  )
  for (const e of failed)
    if (e.type === 'component.failed') t.ok(e.data.retryInSeconds >= 0 && e.data.retryInSeconds <= 0.04)
  t.match(
    events.filter((e) => e.type === 'component.started').map((e) => e.data),
    [{ component: 'broken', attempts: 3 }],
  )

  await lifecycle.stop()
  t.notOk(broken.running, 'a component started on a retry is stopped with the rest')
  t.notOk(healthy.running)
})

t.test('stop ends the retries of a component that never starts', async (t) => {
  const lifecycle = new Lifecycle(pino({ level: 'silent' }), {}, { baseMs: 10, maxMs: 10 })
  const never = flaky('never', Infinity)
  await lifecycle.startRetrying([never])
  await until('a retry', () => never.starts >= 2)
  await lifecycle.stop()
  const starts = never.starts
  await new Promise((r) => setTimeout(r, 100))
  t.equal(never.starts, starts, 'no start after stop')
  t.same(lifecycle.failingComponents(), [])
})

t.test('start() without retries still ends start-up on the first failure', async (t) => {
  const lifecycle = new Lifecycle(pino({ level: 'silent' }))
  await t.rejects(lifecycle.start([flaky('essential', 1)]), /cannot start yet/)
})

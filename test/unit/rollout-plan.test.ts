import t from 'tap'
import {
  AWAY_GRACE_SECONDS,
  hostOutcome,
  planRollout,
  type PlannerHost,
  type RolloutSpec,
  type RolloutState,
} from '../../src/coordinator/rollouts/plan.js'

const spec = (over: Partial<RolloutSpec> = {}): RolloutSpec => ({
  images: ['reg/a:1', 'reg/b:1'],
  selector: '',
  maxParallelHosts: 1,
  maxFailedHosts: null,
  replaces: [],
  ...over,
})
const host = (
  hostId: string,
  state: PlannerHost['state'] = 'pending',
  over: Partial<PlannerHost> = {},
): PlannerHost => ({
  hostId,
  state,
  connected: true,
  incompatible: [],
  ...over,
})
const plan = (hosts: PlannerHost[], over: Partial<RolloutSpec> = {}, state: RolloutState = 'running') =>
  planRollout({ state, spec: spec(over), hosts })

t.test('starts at most maxParallelHosts, counting those already running', async (t) => {
  t.same(
    plan([host('a'), host('b'), host('c')]).start.map((s) => s.hostId),
    ['a'],
  )
  const three = plan([host('a', 'running'), host('b'), host('c'), host('d')], { maxParallelHosts: 3 })
  t.same(
    three.start.map((s) => s.hostId),
    ['b', 'c'],
  )
  t.same(plan([host('a', 'running'), host('b')]).start, [], 'the one slot is taken')
  t.equal(plan([host('a', 'running'), host('b')]).finish, null, 'not finished while one runs')
})

t.test('the next host starts when one finishes', async (t) => {
  const step = plan([host('a', 'succeeded'), host('b'), host('c')])
  t.same(
    step.start.map((s) => s.hostId),
    ['b'],
  )
  t.same(step.start[0].images, ['reg/a:1', 'reg/b:1'])
})

t.test('an image known not to run is left out; a host with nothing left is skipped without a command', async (t) => {
  const old = { incompatible: [{ ref: 'reg/b:1', reason: 'driver 470 is too old for cuda>=12.2' }] }
  const partly = plan([host('a', 'pending', old)])
  t.same(partly.start[0].images, ['reg/a:1'])
  t.match(partly.start[0].skipped, [{ ref: 'reg/b:1', status: 'skipped', skip: 'incompatible', bytesPulled: 0 }])
  const none = {
    incompatible: [
      { ref: 'reg/a:1', reason: 'too old' },
      { ref: 'reg/b:1', reason: 'too old' },
    ],
  }
  const step = plan([host('a', 'pending', none), host('b')])
  t.same(
    step.skip.map((s) => s.hostId),
    ['a'],
  )
  t.match(step.skip[0].reason, /^incompatible driver: reg\/a:1: too old; incompatible driver: reg\/b:1/)
  t.same(
    step.start.map((s) => s.hostId),
    ['b'],
    'a skipped host takes no slot',
  )
})

t.test('no host is started after maxFailedHosts failures; the rollout fails once nothing runs', async (t) => {
  const hosts = [host('a', 'failed'), host('b', 'running'), host('c'), host('d')]
  const step = plan(hosts, { maxParallelHosts: 5, maxFailedHosts: 1 })
  t.same(step.start, [])
  t.same(
    step.abandon.map((a) => a.hostId),
    ['c', 'd'],
  )
  t.match(step.abandon[0].reason, /maxFailedHosts is 1/)
  t.equal(step.finish, null, 'b still runs')
  const done = plan([host('a', 'failed'), host('b', 'succeeded')], { maxFailedHosts: 1 })
  t.equal(done.finish, 'failed')
  t.equal(plan([host('a', 'failed'), host('b')], { maxFailedHosts: 2 }).start.length, 1, 'under the limit')
})

t.test('finishes succeeded when every host is done; failed when any failed', async (t) => {
  t.equal(plan([host('a', 'succeeded'), host('b', 'skipped')]).finish, 'succeeded')
  t.equal(plan([host('a', 'succeeded'), host('b', 'failed')]).finish, 'failed')
  t.equal(plan([]).finish, 'succeeded', 'a rollout that matched no host')
})

t.test('a host that is not connected waits, and is given up only when nothing else is left', async (t) => {
  const away = host('a', 'pending', { connected: false })
  const step = plan([away, host('b')])
  t.same(
    step.start.map((s) => s.hostId),
    ['b'],
  )
  t.same(step.abandon, [])
  const end = plan([away, host('b', 'succeeded')])
  t.same(end.abandon, [{ hostId: 'a', reason: 'not started: the host is not connected' }])
  t.equal(end.finish, 'succeeded')
})

t.test('a host away for less than the grace (reconnecting after a coordinator restart) is waited for', async (t) => {
  const input = (awaySeconds: number) => ({
    state: 'running' as const,
    spec: spec(),
    hosts: [host('done', 'succeeded'), host('b', 'pending', { connected: false, awaySeconds })],
  })
  const soon = planRollout(input(5))
  t.same([soon.abandon, soon.finish], [[], null], 'away 5 s: waited for, the rollout goes on')
  const gone = planRollout(input(AWAY_GRACE_SECONDS + 1))
  t.same(gone.abandon, [{ hostId: 'b', reason: 'not started: the host is not connected' }])
  t.equal(gone.finish, 'succeeded')
})

t.test('paused starts nothing; cancelled gives up the pending hosts', async (t) => {
  const paused = plan([host('a'), host('b')], {}, 'paused')
  t.same(paused, { start: [], queue: [], skip: [], abandon: [], finish: null })
  const cancelled = plan([host('a', 'running'), host('b')], {}, 'cancelled')
  t.same(cancelled.start, [])
  t.same(cancelled.abandon, [{ hostId: 'b', reason: 'the rollout was cancelled' }])
  t.same(plan([host('a')], {}, 'succeeded').start, [], 'a finished rollout starts nothing')
})

t.test("a host's outcome from its images", async (t) => {
  const img = (status: 'pulled' | 'present' | 'skipped' | 'failed', skip?: 'incompatible' | 'disk') => ({
    ref: `r/${status}`,
    status,
    reason: 'why',
    bytesPulled: 0,
    ...(skip ? { skip } : {}),
  })
  t.same(hostOutcome([img('pulled'), img('present')]), { state: 'succeeded', reason: null })
  t.same(hostOutcome([img('pulled'), img('skipped', 'incompatible')]), { state: 'succeeded', reason: null })
  t.same(hostOutcome([img('skipped', 'disk')]), { state: 'skipped', reason: 'no room: r/skipped: why' })
  t.same(hostOutcome([img('pulled'), img('failed')]), { state: 'failed', reason: 'pull error: r/failed: why' })
})

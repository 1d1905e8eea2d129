// Which exited containers a prune removes: only exited ones past the age, never protected by a
// label, the newest keepPerImage of each image kept; off unless exitedOlderThanSeconds is set.
import t from 'tap'
import { planContainerRemovals, protectedBy, type ContainerFacts } from '../../src/prune/containers-plan.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'

const NOW = new Date('2026-11-30T12:00:00Z')
const hoursAgo = (h: number) => NOW.getTime() / 1000 - h * 3600

function container(id: string, state: string, finishedHoursAgo: number | null, more: Partial<ContainerFacts> = {}) {
  return {
    id,
    name: id,
    state,
    sizeRwBytes: 100,
    logBytes: 50,
    imageId: 'sha256:img',
    labels: {},
    finishedAt: finishedHoursAgo === null ? null : hoursAgo(finishedHoursAgo),
    ...more,
  }
}

const policy = (containers: Record<string, unknown>) => parseConfig(agentConfigSchema, { prune: { containers } }).prune

t.test('off by default', async (t) => {
  const plan = planContainerRemovals({
    containers: [container('old', 'exited', 1000)],
    policy: policy({}).containers,
    now: NOW,
  })
  t.same(plan, { remove: [], kept: [] })
})

t.test('exited past the age go; running, paused, restarting, created and young ones stay', async (t) => {
  const plan = planContainerRemovals({
    containers: [
      container('old', 'exited', 48),
      container('young', 'exited', 1),
      container('run', 'running', null),
      container('paused', 'paused', 48),
      container('restarting', 'restarting', 48),
      container('created', 'created', null),
    ],
    policy: policy({ exitedOlderThanSeconds: 86400 }).containers,
    now: NOW,
  })
  t.same(
    plan.remove.map((c) => [c.id, c.sizeRwBytes, c.logBytes]),
    [['old', 100, 50]],
  )
  t.same(
    plan.kept.map((k) => k.id),
    ['young'],
  )
  t.match(plan.kept[0].reason, 'within exitedOlderThanSeconds')
})

t.test('labels protect; keepPerImage keeps the newest of each image', async (t) => {
  const plan = planContainerRemovals({
    containers: [
      container('a1', 'exited', 30, { imageId: 'a' }),
      container('a2', 'exited', 40, { imageId: 'a' }),
      container('a3', 'exited', 50, { imageId: 'a' }),
      container('b1', 'exited', 60, { imageId: 'b', labels: { 'gpuhost.keep': '' } }),
      container('b2', 'exited', 70, { imageId: 'b', labels: { team: 'ml' } }),
      container('b3', 'exited', 80, { imageId: 'b', labels: { team: 'infra' } }),
    ],
    policy: policy({ exitedOlderThanSeconds: 3600, keepPerImage: 1, protectLabels: ['gpuhost.keep', 'team=ml'] })
      .containers,
    now: NOW,
  })
  t.same(
    plan.remove.map((c) => c.id),
    ['a2', 'a3', 'b3'],
  )
  t.same(
    plan.kept.map((k) => [k.id, k.reason]),
    [
      ['a1', 'among the newest 1 of its image'],
      ['b1', 'protected by label gpuhost.keep'],
      ['b2', 'protected by label team=ml'],
    ],
  )
})

t.test('label matching', async (t) => {
  t.equal(protectedBy({ 'gpuhost.keep': 'yes' }, ['gpuhost.keep']), 'gpuhost.keep')
  t.equal(protectedBy({ team: 'ml' }, ['team=infra']), null)
  t.equal(protectedBy({}, ['gpuhost.keep']), null)
})

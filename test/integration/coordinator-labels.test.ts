// Host labels end to end: three built agents with labels in their config, the built coordinator,
// and GET /v1/hosts listing them and filtering by a Kubernetes label selector. No Docker is
// needed: the agents report it unreachable, and their labels all the same.
import t from 'tap'
import { startAgent } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'

t.test('hosts are listed with their labels and filtered by selector', async (t) => {
  const coord = await startCoordinator(t)
  const agent = (hostId: string, labels: Record<string, string>) =>
    startAgent(t, {
      hostId,
      labels,
      docker: { socket: '/nonexistent/docker.sock' },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
      coordinator: { url: coord.agentsUrl, tokenFile: coord.tokenFileFor(hostId), reconnectMaxSeconds: 1 },
    })
  await agent('h100-a', { rack: 'a', gpu: 'h100' })
  await agent('a100-b', { rack: 'b', gpu: 'a100', 'gpuhost.example.com/pool': 'batch' })
  await agent('t4-a', { rack: 'a', gpu: 't4' })
  const ids = async (query = '') => {
    const res = await coord.api(`/v1/hosts${query}`)
    if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`)
    return res.body.hosts.map((h: { hostId: string }) => h.hostId)
  }
  await waitFor('three hosts connected', async () => (await ids()).length === 3, 30_000, 200)
  const hosts = (await coord.api('/v1/hosts')).body.hosts
  t.same(
    hosts.find((h: { hostId: string }) => h.hostId === 'a100-b').labels,
    { rack: 'b', gpu: 'a100', 'gpuhost.example.com/pool': 'batch' },
    'listed with its labels',
  )
  const q = (selector: string) => `?selector=${encodeURIComponent(selector)}`
  t.same(await ids(q('rack=a')), ['h100-a', 't4-a'])
  t.same(await ids(q('rack=a,gpu=h100')), ['h100-a'])
  t.same(await ids(q('gpu!=t4')), ['a100-b', 'h100-a'])
  t.same(await ids(q('gpu in (h100,a100)')), ['a100-b', 'h100-a'])
  t.same(await ids(q('gpuhost.example.com/pool')), ['a100-b'])
  const bad = await coord.api(`/v1/hosts${q('gpu in (h100')}`)
  t.equal(bad.status, 400)
  t.match(bad.body.error, /selector: unbalanced/)
})

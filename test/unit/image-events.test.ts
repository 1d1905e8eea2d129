// Docker events captured from dockerd 20.10 (test/fixtures/docker/events-api-1.41.jsonl): which
// ones refresh the inventory and which count as a use of an image.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { pino } from 'pino'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { toRuntimeEvent, type DockerEvent } from '../../src/runtime/docker-events.js'
import { imageUseTimes } from '../../src/inventory/image-facts.js'
import { ImageCollector } from '../../src/inventory/images.js'
import { SnapshotStore } from '../../src/core/snapshot.js'
import { UsageTracker } from '../../src/inventory/usage.js'

const events: DockerEvent[] = readFileSync(new URL('../fixtures/docker/events-api-1.41.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l))

t.test('container and image events', async (t) => {
  const store = new SnapshotStore()
  const collector = new ImageCollector(
    new DockerRuntime({
      docker: {
        socket: '/nonexistent.sock',
        timeoutSeconds: 1,
        refreshIntervalSeconds: 300,
        pingIntervalSeconds: 10,
        pingTimeoutSeconds: 1,
      },
      stateDir: t.testdir(),
    }),
    new UsageTracker({ stateDir: t.testdir(), log: pino({ level: 'silent' }) }),
    store,
  )
  const refreshes = events.map((e) => `${e.Type} ${e.Action} ${collector.noteEvent(toRuntimeEvent(e)!)}`)
  t.same(refreshes.filter((r) => r.endsWith('true')).length, events.length, 'every captured event asks for a refresh')
  const uses = (collector as unknown as { pendingUses: { containerId: string; image: string; at: string }[] })
    .pendingUses
  t.same(
    uses.map((u) => u.image),
    ['test/tools:1', 'test/tools:1', 'test/tools:1'],
    'create, start and die are uses; attach and destroy are not',
  )
  const die = events.find((e) => e.Action === 'die')!
  t.equal(uses[2].at, new Date(Math.floor(die.timeNano! / 1e6)).toISOString(), 'at the time of the event')
  // The container is gone by the next refresh: the image is found by the reference the event carried.
  const toolsId = events.find((e) => e.Type === 'image' && e.Action === 'import')!.Actor!.ID!
  const used = imageUseTimes(
    [{ Id: toolsId, RepoTags: ['test/tools:1'], Size: 1, Created: 0 }],
    [],
    new Map(),
    uses,
    new Date().toISOString(),
  )
  t.equal(used.get(toolsId), uses[2].at)
})

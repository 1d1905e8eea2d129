// The prewarm at start: only missing wanted images, and a restart loop does not pull on every start
// (the per-image backoff is in stateDir, so a new process reads what the last one recorded).
import t, { type Test } from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { prewarmOnStart } from '../../src/prewarm/on-start.js'
import { START_BACKOFF_FILE, StartBackoff } from '../../src/prewarm/start-backoff.js'
import type { PrewarmReport, PullStatus } from '../../src/prewarm/result.js'

const log = pino({ level: 'silent' })

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-start-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let now = new Date('2026-11-01T12:00:00.000Z')
  const runs: string[][] = []
  let outcome: PullStatus = 'failed'
  const local = [{ id: 'sha256:1', repoTags: ['have/it:1'], repoDigests: [] }]
  /** one agent process: a fresh backoff read from stateDir, as after a restart */
  const start = () =>
    prewarmOnStart({
      wanted: () => ['have/it:1', 'docker.io/want/big:1'],
      facts: async () => ({ local }),
      backoff: new StartBackoff({ stateDir: dir, now: () => now }),
      run: async (images): Promise<PrewarmReport> => {
        runs.push(images)
        return {
          trigger: 'start',
          dryRun: false,
          plan: [],
          durationSeconds: 1,
          results: images.map((ref) => ({ ref, status: outcome, reason: 'x', source: null, durationSeconds: 1 })),
        }
      },
      log,
    })
  return {
    start,
    runs,
    advance: (ms: number) => (now = new Date(now.getTime() + ms)),
    succeed: () => (outcome = 'pulled'),
    addLocal: (tag: string) => local.push({ id: 'sha256:2', repoTags: [tag], repoDigests: [] }),
  }
}

t.test('only the missing wanted images are prewarmed', async (t) => {
  const s = setup(t)
  const first = await s.start()
  t.same(first.missing, ['docker.io/want/big:1'])
  t.same(s.runs, [['docker.io/want/big:1']])
})

t.test('a restart loop: one attempt per backoff window, doubling; success clears it', async (t) => {
  const s = setup(t)
  await s.start()
  for (let i = 0; i < 5; i++) {
    s.advance(5_000) // restarted every 5 s
    const again = await s.start()
    t.same(again.waiting, ['docker.io/want/big:1'], `restart ${i + 1}: still backing off`)
  }
  t.equal(s.runs.length, 1, 'six starts, one prewarm')
  s.advance(60_000)
  await s.start()
  t.equal(s.runs.length, 2, 'after a minute: tried again')
  s.advance(90_000)
  await s.start()
  t.equal(s.runs.length, 2, 'the second wait is two minutes')
  s.advance(30_000)
  s.succeed()
  await s.start()
  t.equal(s.runs.length, 3)
  s.advance(1_000)
  s.addLocal('want/big:1')
  const done = await s.start()
  t.same(done.missing, [], 'present: nothing to do')
  t.equal(s.runs.length, 3)
})

t.test('a damaged backoff file is moved aside and said so; every image may be tried again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-backoff-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, START_BACKOFF_FILE), '{"version":1,"images":{"a:1":{"attempts":"many"}}')
  const told: string[] = []
  const backoff = new StartBackoff({ stateDir: dir, now: () => new Date(), onDamaged: (r) => told.push(r) })
  t.equal(backoff.waitUntil('a:1'), null, 'nothing held back by a file that could not be read')
  t.match(told[0], /is not valid JSON/)
  t.ok(
    readdirSync(dir).some((f) => f.startsWith(`${START_BACKOFF_FILE}.damaged-`)),
    'the file was moved aside',
  )
})

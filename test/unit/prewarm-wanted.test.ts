// The wanted set: what prune keeps for prewarm ("wanted by prewarm"), in every form an image may
// name it, and the durable store of images held for rollouts.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { planPrune } from '../../src/prune/plan.js'
import { KEPT } from '../../src/prune/plan-types.js'
import { WANTED_FILE, WantedSet } from '../../src/prewarm/wanted.js'
import { imageFactsAt } from '../support/image-facts.js'

const MiB = 1024 * 1024
const NOW = new Date('2026-11-01T12:00:00.000Z')
const day = (n: number) => new Date(NOW.getTime() - n * 86400_000).toISOString()
const DIGEST = 'sha256:' + '7'.repeat(64)

const image = imageFactsAt(NOW)
const policy = { lowPercent: 0, minAgeSeconds: 3600, protect: [] as string[], keepPerRepository: 0 }
const disk = { usedBytes: 1000 * MiB, availBytes: 0 }

t.test('a wanted image is kept with its own reason, by tag, by digest, and in docker.io form', async (t) => {
  const images = [
    image({ id: 'by-tag', repoTags: ['nvidia/cuda:12.4.1-runtime-ubuntu22.04'] }),
    image({ id: 'by-digest', repoDigests: [`nvcr.io/nvidia/pytorch@${DIGEST}`] }),
    image({ id: 'qualified', repoTags: ['ubuntu:22.04'] }),
    image({ id: 'other', repoTags: ['app/x:1'], lastUsed: day(20) }),
    image({ id: 'same-repo-other-tag', repoTags: ['nvidia/cuda:11.8.0-base'] }),
  ]
  const wanted = [
    'docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04',
    `nvcr.io/nvidia/pytorch:24.01-py3@${DIGEST}`,
    'docker.io/library/ubuntu:22.04',
  ]
  const out = planPrune({ disk, images, policy, now: NOW, wanted })
  const reasons = Object.fromEntries(out.kept.map((k) => [k.id, k.reason]))
  t.equal(reasons['by-tag'], KEPT.wanted)
  t.equal(reasons['by-digest'], KEPT.wanted, 'repo:tag@digest matches the RepoDigest')
  t.equal(reasons.qualified, KEPT.wanted)
  t.same(out.plan.map((p) => p.id).sort(), ['other', 'same-repo-other-tag'], 'everything else eligible goes')
  t.notOk(out.expectedEnough, 'the wanted set alone does not fit: not enough')

  const released = planPrune({ disk, images, policy, now: NOW, wanted: wanted.slice(1) })
  t.ok(
    released.plan.some((p) => p.id === 'by-tag'),
    'no longer wanted: eligible again',
  )
  t.equal(KEPT.wanted, 'wanted by prewarm')
})

t.test('a container using a wanted image is the reason it stays', async (t) => {
  const images = [image({ id: 'run', repoTags: ['a:1'], containers: [{ id: 'c', name: 'c', state: 'running' }] })]
  const out = planPrune({ disk, images, policy, now: NOW, wanted: ['a:1'] })
  t.equal(out.kept[0].reason, KEPT.inUse)
})

t.test('the held images are durable; configured ones cannot be released', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-wanted-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const now = () => NOW
  const a = new WantedSet({ stateDir: dir, configured: ['cfg/x:1'], now })
  t.same(a.hold(['r/one:1', 'r/two:1', 'r/one:1'], 'rollout-1'), ['r/one:1', 'r/two:1'], 'each ref once per source')
  t.same(a.hold(['docker.io/r/one:1'], 'rollout-1'), [], 'the docker.io form is the same image')
  a.hold(['r/one:1'], 'rollout-2')
  t.same(a.refs(), ['cfg/x:1', 'r/one:1', 'r/two:1'])
  t.same(a.list()[1], { ref: 'r/one:1', sources: ['rollout-1', 'rollout-2'] })

  const b = new WantedSet({ stateDir: dir, configured: ['cfg/x:1'], now })
  t.same(b.refs(), a.refs(), 'a new instance (a restart) reads the same set')
  t.same(b.releaseSource('rollout-1'), ['r/one:1', 'r/two:1'])
  t.same(b.refs(), ['cfg/x:1', 'r/one:1'], 'still held by the other rollout')
  t.ok(b.release('r/one:1'))
  t.notOk(b.release('cfg/x:1'), 'a configured image is released by the configuration')
  t.same(new WantedSet({ stateDir: dir, configured: [], now }).refs(), [])
  t.match(JSON.parse(readFileSync(join(dir, WANTED_FILE), 'utf8')), { version: 1, held: [] })
  t.notOk(
    readdirSync(dir).some((f) => f.endsWith('.tmp')),
    'no temporary file left behind',
  )
})

t.test('a damaged file is moved aside and said so; the configured images stay wanted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-wanted-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, WANTED_FILE), '{"version":1,"held":[{"ref":""}]}')
  const told: string[] = []
  const w = new WantedSet({ stateDir: dir, configured: ['cfg/x:1'], now: () => NOW, onDamaged: (r) => told.push(r) })
  t.same(w.refs(), ['cfg/x:1'])
  t.match(told[0], /not a wanted-images file/)
  t.ok(readdirSync(dir).some((f) => f.startsWith(`${WANTED_FILE}.damaged-`)))
})

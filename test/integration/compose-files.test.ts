// The compose files pass docker-compose's own validation (Debian's docker-compose), which refuses
// an unknown key; the gpuhost service has what the agent needs from the host.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT, testDir } from '../harness/agent.js'
import { integrationRequired, which } from '../harness/services.js'

const COMPOSE = join(ROOT, 'deploy/compose')

function config(file: string) {
  const r = spawnSync('docker-compose', ['-f', file, 'config'], { encoding: 'utf8', cwd: COMPOSE })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

if (!which('docker-compose')) {
  if (integrationRequired()) t.fail('docker-compose is missing (Debian package docker-compose)')
  else t.plan(0, 'skipped: needs docker-compose')
} else {
  for (const file of ['compose.yaml', 'tensorflow-services.yaml']) {
    t.test(`docker-compose config ${file}`, async (t) => {
      const r = config(join(COMPOSE, file))
      t.equal(r.code, 0, r.err)
      const gpuhost = parse(r.out).services.gpuhost
      t.match(gpuhost, {
        network_mode: 'host',
        pid: 'host',
        runtime: 'nvidia',
        init: true,
        environment: { NVIDIA_DRIVER_CAPABILITIES: 'utility' },
      })
      t.ok(gpuhost.volumes.includes('/var/run/docker.sock:/var/run/docker.sock:rw'), 'the Docker socket')
      t.ok(gpuhost.volumes.includes('/var/lib/docker:/var/lib/docker:ro'), 'the Docker root, read-only')
      t.ok(
        gpuhost.volumes.some((v: string) => v.startsWith('gpuhost-state:/var/lib/gpuhost')),
        'a state volume',
      )
    })
  }

  t.test('an unknown key is refused, so the check above means something', async (t) => {
    const bad = join(testDir(t).path, 'compose.yaml')
    writeFileSync(bad, 'services:\n  gpuhost:\n    image: gpuhost\n    gpus_all: true\n')
    const r = config(bad)
    t.not(r.code, 0)
    t.match(r.err, /gpus_all/)
  })

  t.test('the model servers of the example are protected and prewarmed by its gpuhost.yaml', async (t) => {
    const services = parse(config(join(COMPOSE, 'tensorflow-services.yaml')).out).services
    const images = new Set(
      Object.entries(services)
        .filter(([name]) => name !== 'gpuhost')
        .map(([, s]) => (s as { image: string }).image),
    )
    const { loadAgentConfig } = await import('../../src/config.js')
    const agent = loadAgentConfig(join(COMPOSE, 'gpuhost.yaml'))
    t.same(new Set(agent.prune.protect), images)
    t.same(new Set(agent.prewarm.images), images)
  })
}

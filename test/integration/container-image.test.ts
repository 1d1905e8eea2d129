// The container image, built on the private dockerd from a Node.js base the harness imports (no
// registry): the offline path of the Dockerfile (--target prebuilt) with the staged program, run as its
// non-root user, answers /readyz, reports healthy through its HEALTHCHECK, and stops on SIGTERM.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, testDir } from '../harness/agent.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeNodeBaseImage } from '../harness/images.js'
import { waitFor } from '../harness/ports.js'
import { requireServices } from '../harness/services.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('the image builds offline and its container answers /readyz', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 1536 })
    makeNodeBaseImage(dockerd, 'local/node:base')
    // the build context: what the Dockerfile reads, with the program staged where --target prebuilt takes it
    const context = testDir(t, 'gh-ctx-').path
    for (const f of ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'deploy/container'])
      cpSync(join(ROOT, f), join(context, f), { recursive: true })
    execFileSync('bash', [join(ROOT, 'packaging/stage-app.sh'), join(context, 'deploy/container/app/gpuhost')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 600_000,
    })
    dockerd.docker(
      ['build', '--target', 'prebuilt', '--build-arg', 'BASE=local/node:base'].concat(['-t', 'gpuhost:test', context]),
      { timeoutMs: 600_000 },
    )
    const config = JSON.parse(dockerd.docker(['image', 'inspect', 'gpuhost:test']))[0].Config
    t.equal(config.User, '65532:65532', 'runs as a non-root user')
    t.ok(config.Healthcheck?.Test?.join(' ').includes('/readyz'), 'a HEALTHCHECK on /readyz')

    // no network: the checks run inside the container, as its HEALTHCHECK does; the private
    // dockerd's socket is reached through its group, as compose's group_add does
    const gid = execFileSync('stat', ['-c', '%g', dockerd.socket], { encoding: 'utf8' }).trim()
    const id = dockerd
      .docker(
        ['run', '-d', '--network', 'none', '--health-interval', '1s', '--group-add', gid].concat([
          '-v',
          `${dockerd.socket}:/var/run/docker.sock`,
          'gpuhost:test',
        ]),
      )
      .trim()
    t.teardown(() => void dockerd.docker(['rm', '-f', id]))
    const inspect = () => JSON.parse(dockerd.docker(['inspect', id]))[0].State
    await waitFor(
      'the container to report healthy',
      () => {
        const state = inspect()
        if (!state.Running) throw new Error(`the container exited: ${dockerd.docker(['logs', id])}`)
        return state.Health?.Status === 'healthy'
      },
      120_000,
      500,
    )
    const get = (path: string) =>
      dockerd.docker([
        'exec',
        id,
        'node',
        '-e',
        `fetch('http://127.0.0.1:9477${path}').then(async (r) => ` +
          'console.log(JSON.stringify({ status: r.status, body: await r.json() })))',
      ])
    // ready: Docker answers; the GPU collector fails (no nvidia-smi in this container) and is listed
    t.match(JSON.parse(get('/readyz')), { status: 200, body: { status: 'ready' } })
    const status = JSON.parse(get('/v1/status')).body
    t.equal(status.docker?.reachable, true, 'Docker reached through the mounted socket')
    t.equal(dockerd.docker(['exec', id, 'node', '-p', 'process.getuid()']).trim(), '65532')
    dockerd.docker(['stop', '-t', '30', id], { timeoutMs: 60_000 })
    t.equal(inspect().ExitCode, 0, 'SIGTERM stops it cleanly')
  })
}

// The container image, built on the private dockerd from a Node.js base the harness imports (no
// registry): the offline path of the Dockerfile (--target prebuilt) with the staged program, run as its
// non-root user, answers /readyz, reports healthy through its HEALTHCHECK, and stops on SIGTERM;
// on Docker and on a private containerd, its one-shot commands list the images with a verdict each,
// answer a dry-run prune and prewarm an image through a loopback registry.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, testDir } from '../harness/agent.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeNodeBaseImage } from '../harness/images.js'
import { waitFor } from '../harness/ports.js'
import { integrationRequired, requireServices } from '../harness/services.js'
import { engineMissing, startEngine } from '../harness/engines.js'
import { pushOciImage } from '../harness/oci-image.js'
import { startRegistry } from '../harness/registry.js'

// An image build, then the image on Docker and on containerd with a registry each: minutes on a
// loaded machine, more than the suite's default per-file bound.
t.setTimeout(900_000)

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
          // Docker's root, read-only where Docker says it is, as compose mounts /var/lib/docker
          '-v',
          `${dockerd.mountpoint}:${dockerd.mountpoint}:ro`,
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
    // the one-shot commands of the image, beside its agent: the inventory with a verdict per image,
    // and a dry-run prune
    const cli = (args: string[]) =>
      dockerd.docker(['exec', id, 'node', '/usr/lib/gpuhost/dist/cli.js', ...args], { timeoutMs: 120_000 })
    const imageId = JSON.parse(dockerd.docker(['image', 'inspect', 'gpuhost:test']))[0].Id
    const listed = JSON.parse(cli(['--json', 'check']))
    t.match(listed.docker, { reachable: true, kind: 'docker' })
    t.ok(
      listed.images.some((i: { id: string }) => i.id === imageId),
      'the image lists the images of the Docker it runs on (its own among them)',
    )
    t.match(cli(['prune', '--dry-run']), /./, 'and a dry-run prune answers on Docker (exit 0)')
    // a prewarm through a loopback registry: on the host's network, where the registry is
    const registry = await startRegistry(t)
    const warm = await pushOciImage(registry, { repoTag: 'team/warm:1', sizeBytes: 1024 ** 2 })
    dockerd.docker(
      ['run', '--rm', '--network', 'host', '--group-add', gid]
        .concat(['-v', `${dockerd.socket}:/var/run/docker.sock`])
        .concat(['-v', `${dockerd.mountpoint}:${dockerd.mountpoint}:ro`])
        .concat(['gpuhost:test', 'prewarm', '--image', warm.ref]),
      { timeoutMs: 120_000 },
    )
    t.equal(
      JSON.parse(dockerd.docker(['image', 'inspect', warm.ref]))[0].Id,
      warm.id,
      `the image's prewarm pulled ${warm.ref} into Docker`,
    )
    dockerd.docker(['stop', '-t', '30', id], { timeoutMs: 60_000 })
    t.equal(inspect().ExitCode, 0, 'SIGTERM stops it cleanly')

    // The same image on a containerd node: the private containerd's socket mounted where the
    // config names it, reached as the image's own user through the socket's group.
    const missing = engineMissing('containerd')
    if (missing) {
      if (integrationRequired()) t.fail(`the image on containerd needs ${missing}`)
      else t.comment(`skipped the image on containerd: needs ${missing}`)
      return
    }
    const containerd = await startEngine(t, 'containerd', { diskMiB: 200 })
    containerd.trustRegistry(registry.host)
    const held = await pushOciImage(registry, { repoTag: 'team/held:1', sizeBytes: 1024 ** 2 })
    containerd.pull(held.ref)
    const { socket, namespace } = containerd.agentConfig.runtime as { socket: string; namespace: string }
    const configDir = testDir(t, 'gh-ctd-cfg-')
    configDir.file(
      'agent.yaml',
      JSON.stringify({
        stateDir: '/tmp/state',
        tokenFile: null,
        runtime: { kind: 'containerd', socket: '/run/containerd/containerd.sock', namespace },
      }),
    )
    chmodSync(join(configDir.path, 'agent.yaml'), 0o644)
    const socketGid = execFileSync('stat', ['-c', '%g', socket], { encoding: 'utf8' }).trim()
    const onContainerd = (args: string[], network = 'none') =>
      dockerd.docker(
        ['run', '--rm', '--network', network, '--group-add', socketGid]
          .concat(['-v', `${socket}:/run/containerd/containerd.sock`])
          .concat(['-v', `${containerd.mountpoint}:${containerd.mountpoint}:ro`])
          .concat(['-v', `${join(configDir.path, 'agent.yaml')}:/etc/gpuhost/containerd.yaml:ro`])
          .concat(['gpuhost:test', ...args, '--config', '/etc/gpuhost/containerd.yaml']),
        { timeoutMs: 120_000 },
      )
    const check = JSON.parse(onContainerd(['--json', 'check']))
    t.match(check.docker, { reachable: true, kind: 'containerd' }, 'containerd reached from the image')
    t.ok(
      check.images.some((i: { id: string }) => i.id === held.id),
      `the image lists ${held.ref} from containerd`,
    )
    t.match(onContainerd(['prune', '--dry-run']), /./, 'and a dry-run prune answers (exit 0)')
    onContainerd(['prewarm', '--image', warm.ref], 'host')
    t.ok(containerd.imageNames().includes(warm.ref), `the image's prewarm pulled ${warm.ref} into containerd`)
  })
}

// A private containerd for integration tests, as dockerd.ts starts dockerd: its own root, state
// and socket on a small loop-mounted ext4, with the CRI plugin (image service only: no CNI is
// needed to pull or list) and registry hosts read from a hosts.toml directory (`config_path`), so
// images come from the harness's loopback registries. `ctr` is for the tests' own set-up.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, openSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { onCleanup, killAndWait } from './cleanup.js'

export const CRI_NAMESPACE = 'k8s.io'

export interface PrivateContainerd {
  socket: string
  /** containerd's root (content store, snapshots, metadata) */
  root: string
  mountpoint: string
  dir: string
  namespace: string
  /** run ctr against this daemon in its namespace */
  ctr(args: string[], opts?: { timeoutMs?: number }): string
  /** points pulls of `registryHost` at `server` (itself or a mirror) over plain HTTP */
  setHosts(registryHost: string, servers: string[]): void
  stop(): Promise<void>
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export async function startContainerd(t: Teardown, opts: { diskMiB?: number } = {}): Promise<PrivateContainerd> {
  const diskMiB = opts.diskMiB ?? 512
  const dir = mkdtempSync(join(tmpdir(), 'gh-c-'))
  const image = join(dir, 'disk.ext4')
  const mountpoint = join(dir, 'mnt')
  const state = join(dir, 's')
  const socket = join(dir, 'containerd.sock')
  const hostsDir = join(dir, 'certs.d')
  mkdirSync(mountpoint)
  mkdirSync(state)
  mkdirSync(hostsDir)
  execFileSync('truncate', ['-s', `${diskMiB}M`, image])
  execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image])
  execFileSync('mount', ['-o', 'loop', image, mountpoint])
  const root = join(mountpoint, 'containerd')
  const config = join(dir, 'config.toml')
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${state}"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[debug]',
      `  address = "${socket}.debug"`,
      // nothing the tests do needs these, and each takes start time or host state
      'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
      '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",',
      '  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]',
      '[plugins."io.containerd.grpc.v1.cri"]',
      '  disable_cgroup = true',
      '  disable_apparmor = true',
      '  restrict_oom_score_adj = true',
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    snapshotter = "overlayfs"',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      `    bin_dir = "${join(dir, 'cni-bin')}"`,
      `    conf_dir = "${join(dir, 'cni-conf')}"`,
      '  [plugins."io.containerd.grpc.v1.cri".registry]',
      `    config_path = "${hostsDir}"`,
      '',
    ].join('\n'),
  )

  let child: ReturnType<typeof spawn> | null = null
  const log = join(dir, 'containerd.log')
  const ctrArgs = ['--address', socket, '--namespace', CRI_NAMESPACE]
  const launch = async () => {
    const out = openSync(log, 'a')
    child = spawn('containerd', ['--config', config], { stdio: ['ignore', out, out] })
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break
      // Up once the CRI plugin answers, not only the core services.
      const r = spawnSync('ctr', ['--address', socket, 'plugins', 'ls'], { encoding: 'utf8' })
      if (r.status === 0 && /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/.test(r.stdout)) return
      await sleep(250)
    }
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : ''
    throw new Error(`private containerd did not start:\n${tail}`)
  }

  const cleanupSync = () => {
    // Shims outlive containerd by design; tests start no tasks, but make sure none is left.
    if (child?.pid) killAndWait(child.pid, 15_000)
    child = null
    spawnSync('sh', ['-c', `pkill -f -- "-address ${socket}" || true`])
    spawnSync('sh', ['-c', `grep -o " ${mountpoint}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`])
    for (let i = 0; i < 20 && spawnSync('mountpoint', ['-q', mountpoint]).status === 0; i++) {
      if (spawnSync('umount', [mountpoint]).status !== 0) spawnSync('sleep', ['0.2'])
    }
    if (spawnSync('mountpoint', ['-q', mountpoint]).status === 0) spawnSync('umount', ['-l', mountpoint])
    rmSync(dir, { recursive: true, force: true })
  }
  const undo = onCleanup(`containerd ${dir}`, cleanupSync)
  t.teardown(() => undo())
  await launch()

  return {
    socket,
    root,
    mountpoint,
    dir,
    namespace: CRI_NAMESPACE,
    ctr: (args, o = {}) =>
      execFileSync('ctr', [...ctrArgs, ...args], {
        encoding: 'utf8',
        timeout: o.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      }),
    setHosts: (registryHost, servers) => {
      const hostDir = join(hostsDir, registryHost)
      mkdirSync(hostDir, { recursive: true })
      const lines = [`server = "http://${registryHost}"`, '']
      for (const s of servers) lines.push(`[host."http://${s}"]`, '  capabilities = ["pull", "resolve"]', '')
      writeFileSync(join(hostDir, 'hosts.toml'), lines.join('\n'))
    },
    stop: async () => undo(),
  }
}

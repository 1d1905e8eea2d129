// A private dockerd for integration tests: its own socket, data root and exec root, on a small
// loop-mounted ext4 so disk usage and thresholds are real. Never touches the host's Docker.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, openSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { onCleanup, killAndWait } from './cleanup.js'

export interface PrivateDockerd {
  /** unix socket path */
  socket: string
  /** DOCKER_HOST value */
  host: string
  dataRoot: string
  /** the loop-mounted filesystem that holds dataRoot */
  mountpoint: string
  dir: string
  /** run the docker CLI against this daemon */
  docker(args: string[], opts?: { input?: Buffer | string; timeoutMs?: number }): string
  /** stop the daemon, keep the disk (for restart tests) */
  kill(): Promise<void>
  /** start it again on the same disk */
  restart(): Promise<void>
  stop(): Promise<void>
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface DockerdOptions {
  diskMiB?: number
  storageDriver?: string
  /** more dockerd flags, e.g. --add-runtime nvidia=/path (registered by name, as the toolkit does) */
  extraArgs?: string[]
  /** ext4 blocks reserved for root, in percent (mkfs -m); 0 unless asked, mkfs's own default is 5 */
  reservedPercent?: number
}

export async function startDockerd(t: Teardown, opts: DockerdOptions = {}): Promise<PrivateDockerd> {
  const diskMiB = opts.diskMiB ?? 512
  // Short base path: unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'gh-d-'))
  const image = join(dir, 'disk.ext4')
  const mountpoint = join(dir, 'mnt')
  const execRoot = join(dir, 'x')
  const socket = join(dir, 'docker.sock')
  const pidfile = join(dir, 'docker.pid')
  mkdirSync(mountpoint)
  mkdirSync(execRoot)
  execFileSync('truncate', ['-s', `${diskMiB}M`, image])
  const reserved = String(opts.reservedPercent ?? 0)
  execFileSync('mkfs.ext4', ['-q', '-F', '-m', reserved, '-E', 'lazy_itable_init=0,lazy_journal_init=0', image])
  execFileSync('mount', ['-o', 'loop', image, mountpoint])
  const dataRoot = join(mountpoint, 'docker')

  let child: ReturnType<typeof spawn> | null = null
  const log = join(dir, 'dockerd.log')

  const launch = async () => {
    const out = openSync(log, 'a')
    child = spawn(
      'dockerd',
      [
        '--data-root',
        dataRoot,
        '--exec-root',
        execRoot,
        '--pidfile',
        pidfile,
        '-H',
        `unix://${socket}`,
        '--iptables=false',
        '--ip6tables=false',
        '--bridge=none',
        `--storage-driver=${opts.storageDriver ?? 'overlay2'}`,
        '--containerd-namespace',
        'gh-test',
        '--containerd-plugins-namespace',
        'gh-test-plugins',
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', out, out], detached: false },
    )
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break
      const r = spawnSync('docker', ['-H', `unix://${socket}`, 'version', '--format', '{{.Server.Version}}'], {
        encoding: 'utf8',
      })
      if (r.status === 0) return
      await sleep(250)
    }
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : ''
    throw new Error(`private dockerd did not start:\n${tail}`)
  }

  const killDaemon = () => {
    if (child?.pid) killAndWait(child.pid, 15_000)
    child = null
    // dockerd's own containerd lives under the exec root; make sure nothing of it is left.
    spawnSync('sh', ['-c', `pkill -f -- "${execRoot}" || true`])
  }

  const cleanupSync = () => {
    killDaemon()
    // Mounts left under the exec root (a container on the host network leaves netns/default) and
    // under the data root first, then the disk itself.
    spawnSync('sh', ['-c', `grep -o " ${execRoot}/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`])
    spawnSync('sh', ['-c', `grep -o " ${mountpoint}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`])
    for (let i = 0; i < 20 && spawnSync('mountpoint', ['-q', mountpoint]).status === 0; i++) {
      if (spawnSync('umount', [mountpoint]).status !== 0) spawnSync('sleep', ['0.2'])
    }
    if (spawnSync('mountpoint', ['-q', mountpoint]).status === 0) spawnSync('umount', ['-l', mountpoint])
    rmSync(dir, { recursive: true, force: true })
  }
  const undo = onCleanup(`dockerd ${dir}`, cleanupSync)
  t.teardown(() => undo())

  await launch()
  const docker = (args: string[], o: { input?: Buffer | string; timeoutMs?: number } = {}) =>
    execFileSync('docker', ['-H', `unix://${socket}`, ...args], {
      input: o.input,
      encoding: 'utf8',
      timeout: o.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    })

  return {
    socket,
    host: `unix://${socket}`,
    dataRoot,
    mountpoint,
    dir,
    docker,
    kill: async () => killDaemon(),
    restart: launch,
    stop: async () => undo(),
  }
}

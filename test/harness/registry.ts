// Debian's docker-registry on a loopback port: a plain upstream, or a pull-through mirror of one.
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup, killAndWait } from './cleanup.js'
import { freePort, waitFor } from './ports.js'

export interface PrivateRegistry {
  /** host:port, as used in image references */
  host: string
  url: string
  port: number
  /** stop it (for fallback tests); start() brings it back on the same port and storage */
  stop(): Promise<void>
  start(): Promise<void>
  /** freeze the registry process (SIGSTOP): connections stay open and nothing more is sent */
  pause(): void
  /** let a paused registry go on (SIGCONT) */
  resume(): void
  /** lines the registry logged, for asserting what went through it */
  log(): string
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export async function startRegistry(
  t: Teardown,
  opts: { proxyOf?: string; extraConfig?: string[] } = {},
): Promise<PrivateRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-reg-'))
  const port = await freePort()
  const config = join(dir, 'config.yml')
  const logFile = join(dir, 'registry.log')
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: info, formatter: text }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(opts.proxyOf ? ['proxy:', `  remoteurl: ${opts.proxyOf}`] : []),
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  )

  let pid: number | undefined
  const launch = async () => {
    const out = openSync(logFile, 'a')
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', out, out] })
    pid = child.pid
    // 401 is a registry up and asking for a token
    await waitFor(
      `registry on ${port}`,
      async () => [200, 401].includes((await fetch(`http://127.0.0.1:${port}/v2/`)).status),
      20_000,
    )
  }
  let paused = false
  const signal = (sig: NodeJS.Signals) => {
    if (pid) process.kill(pid, sig)
    paused = sig === 'SIGSTOP'
  }
  const halt = () => {
    // A stopped process would not see SIGTERM until continued.
    if (pid && paused) signal('SIGCONT')
    if (pid) killAndWait(pid, 5000)
    pid = undefined
  }
  const undo = onCleanup(`registry ${dir}`, () => {
    halt()
    rmSync(dir, { recursive: true, force: true })
  })
  t.teardown(() => undo())
  await launch()
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => halt(),
    start: launch,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    log: () => readFileSync(logFile, 'utf8'),
  }
}

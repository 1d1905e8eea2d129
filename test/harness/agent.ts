// Runs the built gpuhost CLI (dist/cli.js) as users do: the agent as a child process, one-shot
// commands with their exit code and output.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { onCleanup, killAndWait } from './cleanup.js'
import { freePort, waitFor } from './ports.js'

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const CLI = join(ROOT, 'dist', 'cli.js')

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface TestDir {
  path: string
  file(name: string, content: string): string
}

export function testDir(t: Teardown, prefix = 'gh-t-'): TestDir {
  const path = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(path, { recursive: true, force: true }))
  return {
    path,
    file(name, content) {
      const p = join(path, name)
      // owner-only, as token files must be (src/config.ts readTokenFile)
      writeFileSync(p, content, { mode: 0o600 })
      return p
    },
  }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {},
): CliResult {
  const started = Date.now()
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 120_000,
    input: opts.input,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started }
}

export function runCliAsync(args: string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
  const started = Date.now()
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('close', (code) => resolvePromise({ code, stdout, stderr, ms: Date.now() - started }))
  })
}

/**
 * Starts a long-running gpuhost command (agent, coordinator) as a child process, registers its
 * cleanup, and waits until `${url}/healthz` answers.
 */
export async function startCliService(
  t: Teardown,
  name: string,
  args: string[],
  url: string,
  env: Record<string, string> = {},
  ready?: () => Promise<boolean>,
) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => {
    output += d
  })
  child.stderr.on('data', (d) => {
    output += d
  })
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  const undo = onCleanup(`${name} ${child.pid}`, () => killAndWait(child.pid!, 5000))
  t.teardown(() => undo())
  await waitFor(
    `${name} /healthz`,
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`)
      return ready ? await ready() : (await fetch(`${url}/healthz`)).ok
    },
    60_000,
    100,
  ) // generous: start-up takes seconds on a loaded machine, and speed is bench/startup.ts's job
  return { child, exited, logs: () => output }
}

export interface RunningAgent {
  url: string
  port: number
  configFile: string
  token: string
  logs(): string
  /** SIGTERM and wait; resolves with the exit code and how long the stop took */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>
  pid: number
}

/** Starts `gpuhost agent` with `config` (listen and tokenFile are filled in) and waits for /healthz. */
export async function startAgent(
  t: Teardown,
  config: Record<string, unknown>,
  /** waitReady: until /readyz answers 200; waitSnapshot: until its first snapshot is taken, ready or not (a
   * host without a runtime is never ready) */
  opts: { waitReady?: boolean; waitSnapshot?: boolean; env?: Record<string, string> } = {},
): Promise<RunningAgent> {
  const dir = testDir(t, 'gh-agent-')
  const port = await freePort()
  const token = 'test-token-' + Math.random().toString(36).slice(2)
  const tokenFile = dir.file('token', token + '\n')
  const full = { listen: `127.0.0.1:${port}`, tokenFile, stateDir: join(dir.path, 'state'), ...config }
  const configFile = dir.file('agent.yaml', stringify(full))
  const url = `http://127.0.0.1:${port}`
  const { child, logs, exited } = await startCliService(t, 'agent', ['agent', '--config', configFile], url, opts.env)
  if (opts.waitReady) await waitFor('agent /readyz', async () => (await fetch(`${url}/readyz`)).ok, 60_000, 200)
  if (opts.waitSnapshot)
    await waitFor(
      "the agent's first snapshot",
      async () => ((await (await fetch(`${url}/readyz`)).json()) as { status: string }).status !== 'starting',
      60_000,
      200,
    )
  return {
    url,
    port,
    configFile,
    token,
    pid: child.pid!,
    logs,
    stop: async (signal = 'SIGTERM') => {
      const started = Date.now()
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const stopped = exited.then((code) => ({ code, ms: Date.now() - started }))
      // Bounded, so that a stop that hangs fails here with a reason instead of at tap's timeout.
      const gone = () => child.exitCode !== null || child.signalCode !== null
      await waitFor(`agent to exit after ${signal}`, gone, 60_000, 50)
      return stopped
    },
  }
}

export async function post(
  url: string,
  token: string | null,
  body: unknown = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed }
}

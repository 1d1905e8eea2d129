// Runs `gpuhost coordinator` from the built CLI as a child process on loopback, with its own
// tokens and data dir; it can be stopped and started again on the same port and data.
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startCliService, testDir } from './agent.js'
import { freePort } from './ports.js'

interface Teardown { teardown(fn: () => void | Promise<void>): void }

export interface CoordinatorSetup {
  port: number
  dataDir: string
  adminToken: string
  agentToken: string
  adminTokenFile: string
  agentTokenFile: string
  /** ws://127.0.0.1:PORT/v1/agents */
  agentsUrl: string
  url: string
}

export interface RunningCoordinator extends CoordinatorSetup {
  pid: number
  logs(): string
  /** an authenticated JSON call to the API; `token: null` sends none */
  api(path: string, opts?: { method?: string; body?: unknown; token?: string | null }): Promise<{ status: number; body: any }>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null }>
}

/** Tokens, a data dir and a port for a coordinator; start it (again) with startCoordinator. */
export async function coordinatorSetup(t: Teardown): Promise<CoordinatorSetup> {
  const dir = testDir(t, 'gh-coord-')
  const port = await freePort()
  const adminToken = 'admin-' + Math.random().toString(36).slice(2)
  const agentToken = 'agent-' + Math.random().toString(36).slice(2)
  return {
    port, adminToken, agentToken,
    dataDir: join(dir.path, 'data'),
    adminTokenFile: dir.file('admin-token', adminToken + '\n'),
    agentTokenFile: dir.file('agent-token', agentToken + '\n'),
    agentsUrl: `ws://127.0.0.1:${port}/v1/agents`,
    url: `http://127.0.0.1:${port}`,
  }
}

export async function startCoordinator(t: Teardown, setup?: CoordinatorSetup, config: Record<string, unknown> = {}): Promise<RunningCoordinator> {
  const s = setup ?? await coordinatorSetup(t)
  const dir = testDir(t, 'gh-coord-cfg-')
  const configFile = dir.file('coordinator.yaml', stringify({
    listen: `127.0.0.1:${s.port}`, adminTokenFile: s.adminTokenFile, agentTokenFile: s.agentTokenFile, dataDir: s.dataDir, ...config,
  }))
  const { child, logs, exited } = await startCliService(t, 'coordinator', ['coordinator', '--config', configFile], s.url)
  return {
    ...s,
    pid: child.pid!,
    logs,
    api: async (path, opts = {}) => {
      const token = opts.token === undefined ? s.adminToken : opts.token
      const res = await fetch(`${s.url}${path}`, {
        method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
      })
      const text = await res.text()
      let body: unknown = text
      try { body = JSON.parse(text) } catch { /* not JSON */ }
      return { status: res.status, body }
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return { code: await exited }
    },
  }
}

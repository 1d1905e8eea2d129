// Runs `gpuhost coordinator` from the built CLI as a child process on loopback, with its own
// tokens, agent secret and data dir; it can be stopped and started again on the same port and data.
// Per-host agent tokens come from `gpuhost coordinator token HOSTID`, as an operator makes them.
import { request } from 'node:https'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { runCli, startCliService, testDir } from './agent.js'
import { freePort, waitFor } from './ports.js'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface CoordinatorSetup {
  port: number
  dataDir: string
  adminToken: string
  agentToken: string
  adminTokenFile: string
  /** the shared agent token, honoured only with agentAuth: shared */
  agentTokenFile: string
  agentSecretFile: string
  /** `gpuhost coordinator token HOSTID`: the token that speaks for that host */
  tokenFor(hostId: string): string
  /** a file holding tokenFor(hostId), for an agent's coordinator.tokenFile */
  tokenFileFor(hostId: string): string
  /** ws://127.0.0.1:PORT/v1/agents */
  agentsUrl: string
  url: string
}

export interface RunningCoordinator extends CoordinatorSetup {
  pid: number
  logs(): string
  /** an authenticated JSON call to the API; `token: null` sends none */
  api(
    path: string,
    opts?: { method?: string; body?: unknown; token?: string | null },
  ): Promise<{ status: number; body: any }>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null }>
}

/** Tokens, a data dir and a port for a coordinator; start it (again) with startCoordinator. */
export async function coordinatorSetup(t: Teardown): Promise<CoordinatorSetup> {
  const dir = testDir(t, 'gh-coord-')
  const port = await freePort()
  const adminToken = 'admin-' + Math.random().toString(36).slice(2)
  const agentToken = 'agent-' + Math.random().toString(36).slice(2)
  const agentSecretFile = dir.file('agent-secret', 'secret-' + Math.random().toString(36).slice(2) + '\n')
  const tokenConfig = dir.file('token.yaml', stringify({ agentSecretFile }))
  const tokenFor = (hostId: string): string => {
    const r = runCli(['coordinator', 'token', hostId, '--config', tokenConfig])
    if (r.code !== 0) throw new Error(`gpuhost coordinator token ${hostId} exited with ${r.code}: ${r.stderr}`)
    return r.stdout.trim()
  }
  let tokenFiles = 0
  return {
    port,
    adminToken,
    agentToken,
    agentSecretFile,
    tokenFor,
    tokenFileFor: (hostId) => dir.file(`host-token-${++tokenFiles}`, tokenFor(hostId) + '\n'),
    dataDir: join(dir.path, 'data'),
    adminTokenFile: dir.file('admin-token', adminToken + '\n'),
    agentTokenFile: dir.file('agent-token', agentToken + '\n'),
    agentsUrl: `ws://127.0.0.1:${port}/v1/agents`,
    url: `http://127.0.0.1:${port}`,
  }
}

/** Another replica of `setup`: the same tokens and agent secret, its own port and data dir. */
export async function replicaSetup(t: Teardown, setup: CoordinatorSetup): Promise<CoordinatorSetup> {
  const port = await freePort()
  return {
    ...setup,
    port,
    dataDir: join(testDir(t, 'gh-coord-').path, 'data'),
    agentsUrl: `ws://127.0.0.1:${port}/v1/agents`,
    url: `http://127.0.0.1:${port}`,
  }
}

/**
 * Starts the coordinator with `config` over the setup's files. With `tls` in the config, `ca` is
 * the CA that signed its certificate: the URLs become https/wss and the API calls trust that CA.
 */
export async function startCoordinator(
  t: Teardown,
  setup?: CoordinatorSetup,
  config: Record<string, unknown> = {},
  opts: { ca?: Buffer } = {},
): Promise<RunningCoordinator> {
  const base = setup ?? (await coordinatorSetup(t))
  const s = opts.ca
    ? { ...base, url: `https://127.0.0.1:${base.port}`, agentsUrl: `wss://127.0.0.1:${base.port}/v1/agents` }
    : base
  const dir = testDir(t, 'gh-coord-cfg-')
  const configFile = dir.file(
    'coordinator.yaml',
    stringify({
      listen: `127.0.0.1:${s.port}`,
      adminTokenFile: s.adminTokenFile,
      agentTokenFile: s.agentTokenFile,
      agentSecretFile: s.agentSecretFile,
      dataDir: s.dataDir,
      ...config,
    }),
  )
  const ready = opts.ca ? async () => (await httpsCall(`${s.url}/healthz`, {}, opts.ca!)).status === 200 : undefined
  const args = ['coordinator', '--config', configFile]
  const { child, logs, exited } = await startCliService(t, 'coordinator', args, s.url, {}, ready)
  return {
    ...s,
    pid: child.pid!,
    logs,
    api: async (path, callOpts = {}) => {
      const token = callOpts.token === undefined ? s.adminToken : callOpts.token
      const raw = callOpts.body
      const body = raw === undefined || typeof raw === 'string' ? raw : JSON.stringify(raw)
      const method = callOpts.method ?? (body === undefined ? 'GET' : 'POST')
      if (opts.ca) return httpsCall(`${s.url}${path}`, { method, token, body }, opts.ca)
      const res = await fetch(`${s.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body,
      })
      const text = await res.text()
      let parsed: unknown = text
      try {
        parsed = JSON.parse(text)
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed }
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return { code: await exited }
    },
  }
}

/** One HTTPS call that trusts `ca` (fetch has no per-call CA). */
export function httpsCall(
  url: string,
  opts: { method?: string; token?: string | null; body?: string },
  ca: Buffer,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        ca,
        headers: {
          'content-type': 'application/json',
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
      },
      (res) => {
        let text = ''
        res.on('data', (d) => {
          text += d
        })
        res.on('end', () => {
          let body: unknown = text
          try {
            body = JSON.parse(text)
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body })
        })
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** a rollout's state is final */
export const rolloutEnded = (r: { state: string }) => ['succeeded', 'failed', 'cancelled'].includes(r.state)

/** polls a rollout's status until `until` holds (by default: it ended) and returns that status */
export async function waitRollout(
  coord: Pick<RunningCoordinator, 'api'>,
  id: string,
  opts: { until?: (r: any) => boolean; what?: string; timeoutMs?: number; everyMs?: number } = {},
): Promise<any> {
  let last: any = null
  await waitFor(
    `rollout ${id} ${opts.what ?? 'to end'}`,
    async () => {
      last = (await coord.api(`/v1/rollouts/${id}`)).body
      return (opts.until ?? rolloutEnded)(last)
    },
    opts.timeoutMs ?? 120_000,
    opts.everyMs ?? 200,
  )
  return last
}

/** waits until a command has a result (succeeded or failed) and returns the coordinator's record of it */
export async function waitForCommand(coord: RunningCoordinator, commandId: string): Promise<any> {
  let last: any = null
  await waitFor(
    `command ${commandId} to finish`,
    async () => {
      last = (await coord.api(`/v1/commands/${commandId}`)).body
      return last.status === 'succeeded' || last.status === 'failed'
    },
    20_000,
    100,
  )
  return last
}

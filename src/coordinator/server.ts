// The reference coordinator's composition root: the fleet store, the agents' WebSocket hub and the
// HTTP API on one listener (HTTPS and WSS when tls is configured).
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { readTokenFile, type CoordinatorConfig } from '../config.js'
import { Lifecycle, type Component } from '../core/lifecycle.js'
import { HttpServer } from '../http/server.js'
import { VERSION } from '../version.js'
import { addCoordinatorRoutes } from './api.js'
import { COMPAT_EVALUATOR } from './evaluator.js'
import { AgentHub } from './hub/hub.js'
import { verifyAgentCredential, type AgentAuthPolicy, type AgentIdentity } from './identity.js'
import { createCoordinatorMetrics } from './metrics.js'
import type { FleetStore } from './store/fleet-store.js'
import { PostgresFleetStore } from './store/postgres/fleet.js'
import { SqliteFleetStore } from './store/sqlite/fleet-store.js'
import { RolloutDriver } from './rollouts/driver.js'
import { grantPeer, grantTtlSeconds } from './peer-grants.js'
import { addRolloutRoutes } from './rollouts/api.js'

export class Coordinator {
  readonly http: HttpServer
  private store: FleetStore | null = null
  private readonly lifecycle: Lifecycle

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly log: Logger,
  ) {
    const adminToken = readTokenOrWarn(config.adminTokenFile, 'adminTokenFile', 'every API call will answer 403', log)
    this.http = new HttpServer({
      listen: config.listen,
      token: () => adminToken,
      authenticateReads: true,
      authenticateBeforeRouting: true,
      log,
      name: 'coordinator',
      maxBodyBytes: config.maxBodyBytes,
      tls: readTls(config.tls),
    })
    this.lifecycle = new Lifecycle(log)
  }

  async start(): Promise<void> {
    const { config, log } = this
    const policy = this.agentAuthPolicy()
    const store = await openStore(config, log)
    this.store = store
    // The hub tells the driver of hellos and results; the driver's commands reach hosts as any command does.
    let rollouts: RolloutDriver | null = null
    const hub = new AgentHub({
      store,
      log,
      authenticate: (req) => authenticateAgent(req, policy, config.tls?.clientCaFile != null),
      maxFrameBytes: config.maxFrameBytes,
      pingIntervalSeconds: config.pingIntervalSeconds,
      commandTimeoutSeconds: config.commandTimeoutSeconds,
      onHostConnected: (hostId) => void rollouts?.hostConnected(hostId),
      onResultsStored: () => void rollouts?.wake(),
      onImagesReported: () => void rollouts?.imagesReported(),
    })
    const grantTtl = grantTtlSeconds(config.commandTimeoutSeconds)
    rollouts = new RolloutDriver({
      store,
      evaluator: COMPAT_EVALUATOR,
      log,
      grantPeer: (g) => grantPeer(policy, g, Math.floor(Date.now() / 1000), grantTtl),
    })
    const metrics = createCoordinatorMetrics({
      store,
      connected: () => hub.connectedCount(),
      counters: hub.counters,
      version: VERSION,
    })
    const { metricsAuth } = config
    addCoordinatorRoutes(this.http, { store, hub, metrics, evaluator: COMPAT_EVALUATOR, metricsAuth })
    addRolloutRoutes(this.http, { store, rollouts, defaults: config.rollouts })
    this.http.onUpgrade(hub.onUpgrade)
    const components: Component[] = [this.http, hub, rollouts]
    await this.lifecycle.start(components)
  }

  private agentAuthPolicy(): AgentAuthPolicy {
    const { config, log } = this
    const refusedTokens = 'per-host agent tokens will be refused'
    const secret = readTokenOrWarn(config.agentSecretFile, 'agentSecretFile', refusedTokens, log)
    if (config.agentAuth === 'per-host') return { mode: 'per-host', secret, sharedToken: null }
    log.warn('agentAuth is shared: the shared agent token can speak for any host; prefer per-host tokens')
    const refusedShared = 'the shared agent token will be refused'
    const sharedToken = readTokenOrWarn(config.agentTokenFile, 'agentTokenFile', refusedShared, log)
    return { mode: 'shared', secret, sharedToken }
  }

  async stop(): Promise<void> {
    await this.lifecycle.stop()
    await this.store?.close()
  }
}

/** The configured fleet store, migrated; throws a StoreOpenError naming what is wrong. */
export async function openStore(config: CoordinatorConfig, log: Logger): Promise<FleetStore> {
  const { store } = config
  if (store.kind === 'sqlite') return new SqliteFleetStore(config.dataDir)
  let password: string | null = null
  if (store.passwordFile) {
    try {
      // a credential like the tokens: the same ownership and mode rules (src/config.ts readTokenFile)
      password = readTokenFile(store.passwordFile)
    } catch (err) {
      throw new Error(`cannot read store.passwordFile: ${(err as Error).message}`)
    }
  }
  const opened = await PostgresFleetStore.open({
    url: store.url!,
    password,
    poolSize: store.poolSize,
    heartbeatSeconds: store.heartbeatSeconds,
    log,
  })
  log.info({ replicaId: opened.replicaId }, 'fleet store: PostgreSQL, shared with any other replicas')
  return opened
}

/**
 * A bearer token, else (with clientCaFile) a client certificate from the client CA whose CN or a
 * DNS name of its subjectAltName is the host id.
 */
function authenticateAgent(req: IncomingMessage, policy: AgentAuthPolicy, clientCerts: boolean): AgentIdentity {
  const header = req.headers.authorization
  if (header !== undefined || !clientCerts) return verifyAgentCredential(header, policy)
  const socket = req.socket as TLSSocket
  if (!socket.authorized) return { ok: false, reason: 'missing bearer token and no trusted client certificate' }
  const cert = socket.getPeerCertificate()
  const names = (cert.subjectaltname ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4))
  const hostId = names[0] ?? (typeof cert.subject?.CN === 'string' ? cert.subject.CN : null)
  return hostId ? { ok: true, hostId } : { ok: false, reason: 'the client certificate names no host' }
}

function readTls(tls: CoordinatorConfig['tls']): { cert: Buffer; key: Buffer; ca?: Buffer } | null {
  if (!tls) return null
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new Error(`cannot read tls.${key}: ${(err as Error).message}`)
    }
  }
  return {
    cert: read(tls.certFile, 'certFile'),
    key: read(tls.keyFile, 'keyFile'),
    ...(tls.clientCaFile ? { ca: read(tls.clientCaFile, 'clientCaFile') } : {}),
  }
}

function readTokenOrWarn(file: string | null, key: string, consequence: string, log: Logger): string | null {
  try {
    const token = readTokenFile(file)
    if (token === null) log.warn(`no ${key} configured: ${consequence}`)
    return token
  } catch (err) {
    log.error({ err: (err as Error).message }, `cannot read ${key}: ${consequence}`)
    return null
  }
}

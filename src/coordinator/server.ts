// The reference coordinator's composition root: the fleet store, the agents' WebSocket hub and the
// HTTP API on one listener.
import type { Logger } from 'pino'
import { readTokenFile, type CoordinatorConfig } from '../config.js'
import { Lifecycle, type Component } from '../agent/lifecycle.js'
import { HttpServer } from '../http/server.js'
import { VERSION } from '../version.js'
import { addCoordinatorRoutes } from './api.js'
import { COMPAT_EVALUATOR } from './evaluator.js'
import { AgentHub } from './hub.js'
import { createCoordinatorMetrics } from './metrics.js'
import { FleetStore } from './store.js'

export class Coordinator {
  readonly http: HttpServer
  private store: FleetStore | null = null
  private readonly lifecycle: Lifecycle

  constructor(private readonly config: CoordinatorConfig, private readonly log: Logger) {
    const adminToken = readTokenOrWarn(config.adminTokenFile, 'adminTokenFile', 'every API call will answer 403', log)
    this.http = new HttpServer({
      listen: config.listen, token: () => adminToken, authenticateReads: true, log, name: 'coordinator',
      maxBodyBytes: config.maxBodyBytes,
    })
    this.lifecycle = new Lifecycle(log)
  }

  async start(): Promise<void> {
    const { config, log } = this
    const agentToken = readTokenOrWarn(config.agentTokenFile, 'agentTokenFile', 'every agent will be refused', log)
    const store = new FleetStore(config.dataDir)
    this.store = store
    const hub = new AgentHub({
      store, log, agentToken: () => agentToken, maxFrameBytes: config.maxFrameBytes,
      pingIntervalSeconds: config.pingIntervalSeconds, commandTimeoutSeconds: config.commandTimeoutSeconds,
    })
    const metrics = createCoordinatorMetrics({ store, connected: () => hub.connectedCount(), counters: hub.counters, version: VERSION })
    addCoordinatorRoutes(this.http, { store, hub, metrics, evaluator: COMPAT_EVALUATOR })
    this.http.onUpgrade(hub.onUpgrade)
    const components: Component[] = [this.http, hub]
    await this.lifecycle.start(components)
  }

  async stop(): Promise<void> {
    await this.lifecycle.stop()
    this.store?.close()
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

// Composition root: builds every part of the agent, wires triggers to jobs, and owns the lifecycle.
import { mkdirSync } from 'node:fs'
import type { Logger } from 'pino'
import { ActionRegistry } from './actions.js'
import { readTokenFile, type AgentConfig } from '../config.js'
import { EventBus } from './events.js'
import { SnapshotStore } from './snapshot.js'
import { JobRunner } from './job-runner.js'
import { Lifecycle, type Component } from './lifecycle.js'
import { HttpServer } from '../http/server.js'
import { createAgentMetrics } from './metrics.js'
import { buildStatus, JobHistory } from './status.js'
import { sdNotify } from './sd-notify.js'
import { VERSION } from '../version.js'

/** What every feature of the agent is built from. */
export interface AgentContext {
  config: AgentConfig
  log: Logger
  store: SnapshotStore
  bus: EventBus
  runner: JobRunner
  http: HttpServer
  /** prune, prewarm, check, status: what HTTP, the coordinator and the CLI invoke */
  actions: ActionRegistry
  now: () => Date
  /** coordinator link state, set by the link when one is configured */
  linkState: () => { configured: boolean; connected: boolean; pending: number }
}

/** A feature adds its routes and returns the components to start, in order. */
export type Feature = (ctx: AgentContext) => Component[]

export class Agent {
  readonly ctx: AgentContext
  private readonly lifecycle: Lifecycle
  private readonly components: Component[] = []
  private readonly history = new JobHistory()

  constructor(config: AgentConfig, log: Logger, features: Feature[], expectedCollectors: string[] = []) {
    let token: string | null = null
    let tokenError: string | null = null
    try {
      token = readTokenFile(config.tokenFile)
    } catch (err) {
      tokenError = (err as Error).message
    }
    const http = new HttpServer({ listen: config.listen, token: () => token, log, maxBodyBytes: 256 * 1024 })
    this.ctx = {
      config, log, http,
      store: new SnapshotStore(expectedCollectors),
      bus: new EventBus(),
      runner: new JobRunner(),
      actions: new ActionRegistry(),
      now: () => new Date(),
      linkState: () => ({ configured: false, connected: false, pending: 0 }),
    }
    this.lifecycle = new Lifecycle(log)
    if (tokenError) log.warn({ tokenFile: config.tokenFile, err: tokenError }, 'cannot read the token file: every POST will answer 403 until it is fixed and the agent restarted')
    else if (token === null) log.warn('no tokenFile configured: every POST will answer 403')

    this.history.listen(this.ctx.bus)
    this.addCoreRoutes()
    for (const feature of features) this.components.push(...feature(this.ctx))
  }

  private addCoreRoutes(): void {
    const { http, store, bus } = this.ctx
    const metrics = createAgentMetrics({ snapshot: () => store.get(), link: () => this.ctx.linkState(), version: VERSION })
    bus.subscribe(metrics.onEvent)
    http.get('/healthz', () => ({ status: 200, body: { status: 'ok' } }))
    http.get('/readyz', () => store.ready()
      ? { status: 200, body: { status: 'ready' } }
      : { status: 503, body: { status: 'starting', waitingFor: 'first snapshot' } })
    http.get('/metrics', async () => ({ status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType }))
    http.get('/v1/status', () => ({ status: 200, body: this.status() }))
    this.ctx.actions.register('status', async () => this.status())
  }

  status() {
    return buildStatus({
      hostId: this.ctx.config.hostId, version: VERSION, snapshot: this.ctx.store.get(),
      history: this.history, link: this.ctx.linkState(),
    })
  }

  async start(): Promise<void> {
    mkdirSync(this.ctx.config.stateDir, { recursive: true })
    await this.lifecycle.start([this.ctx.http, ...this.components])
    this.ctx.bus.publish('agent.started', { version: VERSION })
    sdNotify('READY=1', this.ctx.log)
  }

  async stop(): Promise<void> {
    sdNotify('STOPPING=1', this.ctx.log)
    await this.lifecycle.stop()
  }
}

// Composition root: builds every part of the agent, wires triggers to jobs, and owns the lifecycle.
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { ActionRegistry } from '../core/actions.js'
import { readTokenFile, type AgentConfig } from '../config.js'
import { EventBus } from '../core/events.js'
import { SnapshotStore } from '../core/snapshot.js'
import { JobRunner } from '../core/job-runner.js'
import { DEFAULT_RESTART_BACKOFF, Lifecycle, type Component } from '../core/lifecycle.js'
import { systemClock, type Clock } from '../core/clock.js'
import { HttpServer, splitHostPort } from '../http/server.js'
import { allowedHostCheck } from '../http/allowed-host.js'
import { createAgentMetrics } from './metrics.js'
import { buildStatus, JobHistory } from './status.js'
import { failingParts, readiness, type FailingPart } from './readiness.js'
import { sdNotify } from './sd-notify.js'
import { VERSION } from '../version.js'
import { StateGuard } from '../state/guard.js'
import { createRuntime } from '../runtime/create.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { PullsInFlight } from '../core/pulls-in-flight.js'
import { WantedSet } from '../prewarm/wanted.js'
import type { PeerServeStats } from '../peers/metrics.js'
import type { AgentContext, Feature, LinkState } from '../core/feature.js'
import type { AgentStatus } from './status.js'

declare module '../core/actions.js' {
  interface ActionMap {
    status: { args: Record<string, never>; result: AgentStatus }
  }
}

const NO_LINK: LinkState = { configured: false, connected: false, pending: 0 }

export class Agent {
  readonly ctx: AgentContext
  private readonly lifecycle: Lifecycle
  private readonly components: Component[] = []
  private readonly history = new JobHistory()
  private linkState: () => LinkState = () => NO_LINK
  private peerStats: PeerServeStats | null = null

  constructor(
    config: AgentConfig,
    log: Logger,
    features: Feature[],
    opts: { now?: Clock; runtime?: ContainerRuntime } = {},
  ) {
    let token: string | null = null
    let tokenError: string | null = null
    try {
      token = readTokenFile(config.tokenFile)
    } catch (err) {
      tokenError = (err as Error).message
    }
    const http = new HttpServer({
      listen: config.listen,
      token: () => token,
      noTokenReason: () =>
        tokenError
          ? `the token file ${config.tokenFile} cannot be used (the agent's log says why)`
          : 'no tokenFile is configured',
      log,
      name: 'agent',
      maxBodyBytes: config.maxBodyBytes,
      bodyTimeoutMs: config.http.bodyTimeoutSeconds * 1000,
      allowedHost: {
        check: allowedHostCheck([
          hostname(),
          hostname().split('.')[0],
          config.hostId,
          splitHostPort(config.listen).host,
          ...config.http.allowedHosts,
        ]),
        hint: 'an IP address, localhost, its hostname or a name in http.allowedHosts',
      },
    })
    const now = opts.now ?? systemClock
    const events = new EventBus(now)
    this.ctx = {
      config,
      log,
      http,
      now,
      store: new SnapshotStore([], now),
      bus: events,
      state: new StateGuard({ stateDir: config.stateDir, reserveBytes: config.state.reserveBytes, bus: events, log }),
      runner: new JobRunner(),
      runtime: opts.runtime ?? createRuntime(config),
      pulls: new PullsInFlight(),
      wanted: new WantedSet({
        stateDir: config.stateDir,
        configured: config.prewarm.images,
        now,
        onDamaged: (reason, movedTo) =>
          log.error({ movedTo, err: reason }, 'the wanted-images file was damaged: moved aside, held images released'),
      }),
      actions: new ActionRegistry(),
      linkState: () => this.linkState(),
    }
    const bus = this.ctx.bus
    this.lifecycle = new Lifecycle(
      log,
      {
        failed: (f) => bus.publish('component.failed', f),
        started: (s) => bus.publish('component.started', s),
      },
      DEFAULT_RESTART_BACKOFF,
      now,
    )
    if (tokenError)
      log.warn(
        { tokenFile: config.tokenFile, err: tokenError },
        'cannot read the token file: every POST will answer 403 until it is fixed and the agent restarted',
      )
    else if (token === null) log.warn('no tokenFile configured: every POST will answer 403')

    this.history.listen(this.ctx.bus)
    this.publishCollectorTransitions()
    this.addCoreRoutes()
    const collectors: string[] = []
    for (const feature of features) {
      const parts = feature(this.ctx)
      this.components.push(...parts.components)
      collectors.push(...(parts.collectors ?? []))
      if (parts.linkState) this.linkState = parts.linkState
      if (parts.peerStats) this.peerStats = parts.peerStats
    }
    this.ctx.store.expectCollectors(collectors)
  }

  /** A collector that starts failing, and one that recovers, is an event once per change, not per run. */
  private publishCollectorTransitions(): void {
    const { store, bus } = this.ctx
    const failing = new Map<string, number>()
    store.on('collected', (name: string) => {
      const status = store.get().collectors[name]
      if (!status) return
      const failures = failing.get(name)
      if (!status.success) {
        if (failures === undefined)
          bus.publish('collector.failed', { collector: name, error: status.error ?? 'failed' })
        failing.set(name, (failures ?? 0) + 1)
      } else if (failures !== undefined) {
        failing.delete(name)
        bus.publish('collector.recovered', { collector: name, failures })
      }
    })
  }

  private addCoreRoutes(): void {
    const { http, store, bus } = this.ctx
    const metrics = createAgentMetrics({
      snapshot: () => store.get(),
      link: () => this.ctx.linkState(),
      version: VERSION,
      stateWriteErrors: () => this.ctx.state.errors,
      wanted: () => this.ctx.wanted.refs(),
      peers: () => this.peerStats,
    })
    bus.subscribe(metrics.onEvent)
    // A prune frees space: state held in memory is written now rather than on the next retry.
    bus.subscribe((e) => {
      if (e.type === 'prune.finished') setImmediate(() => this.ctx.state.retryNow())
    })
    http.get('/healthz', () => ({ status: 200, body: { status: 'ok' } }))
    http.get('/readyz', () =>
      readiness({ snapshotTaken: store.ready(), snapshot: store.get(), failing: this.failingParts() }),
    )
    http.get('/metrics', async () => ({
      status: 200,
      body: await metrics.registry.metrics(),
      contentType: metrics.registry.contentType,
    }))
    http.get('/v1/status', () => ({ status: 200, body: this.status() }))
    this.ctx.actions.register('status', async () => this.status())
  }

  status() {
    return buildStatus({
      hostId: this.ctx.config.hostId,
      version: VERSION,
      snapshot: this.ctx.store.get(),
      history: this.history,
      link: this.linkStatus(),
      failing: this.failingParts(),
    })
  }

  private failingParts(): FailingPart[] {
    return failingParts(this.ctx.store.get(), this.lifecycle.failingComponents())
  }

  /** the link as status shows it: drop counts are for metrics */
  private linkStatus(): Omit<LinkState, 'dropped'> {
    const { dropped: _dropped, ...link } = this.ctx.linkState()
    return link
  }

  async start(): Promise<void> {
    mkdirSync(this.ctx.config.stateDir, { recursive: true })
    this.ctx.state.start()
    // Without its HTTP server the agent can answer nothing: that one failing ends start-up.
    await this.lifecycle.start([this.ctx.http])
    await this.lifecycle.startRetrying(this.components)
    this.ctx.bus.publish('agent.started', { version: VERSION })
    sdNotify('READY=1', this.ctx.log)
  }

  async stop(): Promise<void> {
    sdNotify('STOPPING=1', this.ctx.log)
    // Published before the link stops, so the coordinator learns of an orderly stop.
    this.ctx.bus.publish('agent.stopping', {})
    await this.lifecycle.stop()
    this.ctx.state.stop()
  }
}

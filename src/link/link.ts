// The agent's link to a coordinator: a WebSocket client that says hello, sends snapshots and every
// bus event (through the durable outbox), runs the coordinator's commands as actions (each command id
// once), resends what is not acked in time, and reconnects with backoff (longer when the coordinator
// refused the connection). This class composes the parts: the socket (socket.ts), the send window
// (delivery.ts), the commands (commands.ts) and the snapshots (snapshot.ts); it says hello on every
// connection and routes the coordinator's frames.
import WebSocket from 'ws'
import type { AgentContext, Feature, LinkState } from '../core/feature.js'
import type { Component } from '../core/lifecycle.js'
import { envelop, errorReply, parseCoordinatorMessage, type CoordinatorMessage, type Hello } from '../protocol.js'
import { peerServingFact } from '../peers/advertise.js'
import { VERSION } from '../version.js'
import { LinkSocket } from './socket.js'
import { Delivery } from './delivery.js'
import { CommandRunner } from './commands.js'
import { SnapshotSender } from './snapshot.js'

/** Registers the link when coordinator.url is set, and declares its state for status and metrics. */
export const coordinatorLinkFeature: Feature = (ctx) => {
  if (!ctx.config.coordinator.url) return { components: [] }
  const link = new CoordinatorLink(ctx)
  return { components: [link], linkState: () => link.state() }
}

export class CoordinatorLink implements Component {
  readonly name = 'coordinator-link'
  private readonly socket: LinkSocket
  private readonly delivery: Delivery
  private readonly commands: CommandRunner
  private readonly snapshots: SnapshotSender
  /** the id of this connection's hello: its ack means the coordinator accepted the connection */
  private helloId: string | null = null
  private warnedUnadvertised = false

  constructor(private readonly ctx: AgentContext) {
    this.socket = new LinkSocket(ctx, {
      opened: (ws) => this.onOpen(ws),
      frame: (ws, data) => this.onMessage(ws, data),
    })
    this.delivery = new Delivery(ctx, this.socket)
    this.commands = new CommandRunner(ctx, (entry) => this.delivery.enqueue(entry))
    this.snapshots = new SnapshotSender(ctx, this.socket, () => this.status())
  }

  state(): LinkState {
    return {
      configured: true,
      connected: this.socket.isConnected,
      pending: this.delivery.pending,
      lastError: this.socket.lastError,
      dropped: this.delivery.dropped,
    }
  }

  async start(): Promise<void> {
    this.delivery.open()
    this.commands.open()
    this.snapshots.start()
    const { url } = this.ctx.config.coordinator
    this.ctx.log.info({ url, pending: this.delivery.pending }, 'coordinator link starting')
    this.socket.connect()
  }

  async stop(): Promise<void> {
    this.delivery.stop()
    this.snapshots.stop()
    await this.socket.close()
    this.delivery.close()
    this.commands.close()
  }

  private onOpen(ws: WebSocket): void {
    this.delivery.restart()
    this.snapshots.restart()
    void this.sendHello(ws)
  }

  private async sendHello(ws: WebSocket): Promise<void> {
    // The host facts are not waited for (a slow lsblk would hold up the hello): a hello before the
    // first read says none, and every snapshot from the read on carries them (the read is a change).
    const status = await this.status()
    const { peers } = this.ctx.config
    // Peer tokens are checked with the link token: without one every peer request would be refused.
    const canServe = typeof this.ctx.runtime.saveImage === 'function' && !!this.ctx.config.coordinator.tokenFile
    const serving = peerServingFact(peers, canServe)
    if (peers.serve && !serving && !this.warnedUnadvertised) {
      this.warnedUnadvertised = true
      this.ctx.log.warn(
        { listen: peers.listen },
        'peers.serve is on but the coordinator is not told of it (set peers.advertiseUrl for a wildcard ' +
          'listen; a runtime that cannot export images, or a host without coordinator.tokenFile, only ' +
          'fetches): no host will fetch from this one',
      )
    }
    const hello = envelop<Hello>(
      this.ctx.config.hostId,
      {
        type: 'hello',
        version: VERSION,
        actions: this.ctx.actions.names(),
        facts: serving ? { ...status, peers: serving } : status,
        labels: this.ctx.config.labels,
      },
      { ts: this.ctx.now().toISOString() },
    )
    this.helloId = hello.id
    this.socket.send(ws, hello)
    this.socket.helloSent(ws)
    this.snapshots.send()
    this.delivery.pump()
  }

  private async status(): Promise<Record<string, unknown>> {
    try {
      return await this.ctx.actions.invoke('status', {}, 'coordinator')
    } catch (err) {
      return { error: (err as Error).message }
    }
  }

  private onMessage(ws: WebSocket, data: Buffer): void {
    const parsed = parseCoordinatorMessage(data, this.ctx.config.coordinator.maxFrameBytes)
    if (!parsed.ok) {
      this.ctx.log.warn({ code: parsed.error.code, err: parsed.error.message }, 'refused a frame from the coordinator')
      const reply = { ...errorReply(this.ctx.config.hostId, parsed.error), ts: this.ctx.now().toISOString() }
      return this.socket.send(ws, reply)
    }
    const message: CoordinatorMessage = parsed.message
    if (message.type === 'ack') {
      // The coordinator acked the hello: this connection is accepted, the backoff starts over.
      if (this.helloId !== null && message.ids.includes(this.helloId)) {
        this.helloId = null
        this.socket.accepted()
      }
      this.delivery.acked(message.ids)
    } else if (message.type === 'command') {
      void this.commands.run(message)
    } else if (message.retryable) {
      this.delivery.retryable(message.ref, `${message.code}: ${message.message}`)
    } else {
      this.delivery.refused(message.ref, `${message.code}: ${message.message}`)
    }
  }
}

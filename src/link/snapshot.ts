// Snapshots for the coordinator: the agent's state, sent on every interval and on change (at most
// every SNAPSHOT_THROTTLE_MS). A snapshot is not kept in the outbox: the next one replaces it. The
// image list is left out while it is the one already sent on this connection, or when it does not fit
// in one frame.
import { createHash } from 'node:crypto'
import type { AgentContext } from '../core/feature.js'
import type { ImageCompat } from '../core/snapshot.js'
import { envelop, type ReportedImage, type SnapshotMessage } from '../protocol.js'
import type { LinkSocket } from './socket.js'

/** snapshots on change are sent at most this often */
const SNAPSHOT_THROTTLE_MS = 5000

export class SnapshotSender {
  private timer: NodeJS.Timeout | null = null
  private throttle: NodeJS.Timeout | null = null
  private lastSentAt = 0
  /** digest of the image list last sent on this connection: an unchanged list is not sent again */
  private sentImagesDigest: string | null = null

  constructor(
    private readonly ctx: Pick<AgentContext, 'config' | 'log' | 'store' | 'now'>,
    private readonly socket: Pick<LinkSocket, 'connection' | 'send'>,
    /** the agent's status, as the status action answers it */
    private readonly status: () => Promise<Record<string, unknown>>,
  ) {}

  start(): void {
    this.ctx.store.on('change', this.onChange)
    this.timer = setInterval(() => this.send(), this.ctx.config.coordinator.snapshotIntervalSeconds * 1000)
    this.timer.unref()
  }

  stop(): void {
    this.ctx.store.off('change', this.onChange)
    for (const timer of [this.timer, this.throttle]) if (timer) clearTimeout(timer)
  }

  /** A new connection has no image list yet. */
  restart(): void {
    this.sentImagesDigest = null
  }

  send(): void {
    const ws = this.socket.connection
    if (!ws) return
    this.lastSentAt = this.ctx.now().getTime()
    void this.status().then((status) => {
      if (this.socket.connection !== ws) return
      const snapshot = buildSnapshotMessage(this.ctx, status)
      if (snapshot.localImages) {
        const digest = createHash('sha256').update(JSON.stringify(snapshot.localImages)).digest('hex')
        if (digest === this.sentImagesDigest) snapshot.localImages = null
        else this.sentImagesDigest = digest
      }
      if (Buffer.byteLength(JSON.stringify(snapshot)) > this.ctx.config.coordinator.maxFrameBytes) {
        this.ctx.log.warn(
          { images: snapshot.localImages?.length },
          'the image list does not fit in one frame: sending the snapshot without it',
        )
        snapshot.localImages = null
        this.sentImagesDigest = null
      }
      this.socket.send(ws, snapshot)
    })
  }

  private readonly onChange = (): void => {
    if (this.throttle) return
    const wait = Math.max(0, this.lastSentAt + SNAPSHOT_THROTTLE_MS - this.ctx.now().getTime())
    this.throttle = setTimeout(() => {
      this.throttle = null
      this.send()
    }, wait)
    this.throttle.unref()
  }
}

const asObject = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null

function reportedCompat(c: ImageCompat): NonNullable<ReportedImage['compat']> {
  const out: NonNullable<ReportedImage['compat']> = {
    compatible: c.compatible,
    reason: c.reason,
    requirement: c.requirement,
  }
  if (c.kernels !== undefined) out.kernels = c.kernels
  if (c.kernelsReason !== undefined) out.kernelsReason = c.kernelsReason
  if (c.enforced !== undefined) out.enforced = c.enforced
  return out
}

function buildSnapshotMessage(
  ctx: Pick<AgentContext, 'config' | 'store' | 'now'>,
  status: Record<string, unknown>,
): SnapshotMessage {
  const images = ctx.store.get().images
  const localImages: ReportedImage[] | null = images
    ? images.map((i) => ({
        id: i.id,
        repoTags: i.repoTags,
        repoDigests: i.repoDigests,
        sizeBytes: i.sizeBytes,
        cudaEnv: i.cudaEnv,
        compat: i.compat ? reportedCompat(i.compat) : null,
      }))
    : null
  const snapshot = ctx.store.get()
  return envelop<SnapshotMessage>(
    ctx.config.hostId,
    {
      type: 'snapshot',
      gpu: asObject(status.gpu) ?? { ...snapshot.gpu },
      disk: asObject(status.disk) ?? (snapshot.disk ? { ...snapshot.disk } : null),
      images: asObject(status.images),
      localImages,
      lastPrune: asObject(status.lastPrune),
      lastPrewarm: asObject(status.lastPrewarm),
      labels: ctx.config.labels,
      ...(snapshot.host ? { host: snapshot.host } : {}),
    },
    { ts: ctx.now().toISOString() },
  )
}

// One `docker pull` through the Docker API, with the attempt's abort signal, reading the JSON
// progress stream into bytes done against the manifest's compressed size.
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { messageOf, type DockerApi } from './docker-api.js'
import { PullError, type PullProgress } from './runtime.js'

export interface StreamEvent {
  status?: string
  id?: string
  error?: string
  errorDetail?: { message?: string }
  progressDetail?: { current?: number; total?: number }
}

/** Tracks bytes per layer; dockerd names each layer by the first 12 hex digits of its digest. */
export class PullProgressTracker {
  private readonly sizes = new Map<string, number>()
  private readonly done = new Map<string, number>()

  constructor(
    layers: { digest: string; sizeBytes: number }[],
    private readonly total: number,
  ) {
    for (const l of layers) this.sizes.set(l.digest.replace(/^sha256:/, '').slice(0, 12), l.sizeBytes)
  }

  update(e: StreamEvent): void {
    if (!e.id || (!this.sizes.has(e.id) && !e.progressDetail?.total)) return
    if (e.progressDetail?.total && !this.sizes.has(e.id)) this.sizes.set(e.id, e.progressDetail.total)
    const size = this.sizes.get(e.id) ?? 0
    if (e.status === 'Downloading' && typeof e.progressDetail?.current === 'number') {
      this.done.set(e.id, Math.min(size, e.progressDetail.current))
    } else if (
      e.status &&
      /^(Download complete|Verifying Checksum|Pull complete|Already exists|Extracting)/.test(e.status)
    ) {
      this.done.set(e.id, size)
    }
  }

  get(): PullProgress {
    let bytesDone = 0
    for (const v of this.done.values()) bytesDone += v
    return { bytesDone: Math.min(bytesDone, this.total), bytesTotal: this.total }
  }
}

const NOT_FOUND = /manifest unknown|not found|does not exist|repository name not known/i

export async function dockerPull(
  api: DockerApi,
  args: {
    name: string
    /** tag or digest */
    reference: string
    auth?: Record<string, string>
    signal: AbortSignal
    onEvent: (e: StreamEvent) => void
  },
): Promise<void> {
  let stream: Readable
  try {
    // No deadline but the attempt's signal: a large layer may extract for minutes without a line.
    // dockerode sends the auth config as X-Registry-Auth, base64url with its padding, as dockerd reads it.
    stream = (await api.docker.createImage(args.auth, {
      fromImage: args.name,
      tag: args.reference,
      abortSignal: args.signal,
    })) as Readable
  } catch (err) {
    const message = messageOf(err)
    throw new PullError(message, NOT_FOUND.test(message))
  }
  const onAbort = () => stream.destroy(new Error('aborted'))
  args.signal.addEventListener('abort', onAbort, { once: true })
  try {
    const lines = createInterface({ input: stream, crlfDelay: Infinity })
    for await (const line of lines) {
      if (!line.trim()) continue
      let e: StreamEvent
      try {
        e = JSON.parse(line)
      } catch {
        continue
      }
      if (e.error) {
        const message = e.errorDetail?.message ?? e.error
        throw new PullError(message, NOT_FOUND.test(message))
      }
      args.onEvent(e)
    }
    if (args.signal.aborted) throw new PullError(String(args.signal.reason?.message ?? 'aborted'), false)
  } catch (err) {
    if (args.signal.aborted) throw new PullError(String(args.signal.reason?.message ?? 'aborted'), false)
    throw err
  } finally {
    args.signal.removeEventListener('abort', onAbort)
  }
}

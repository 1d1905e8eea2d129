// Pulls on containerd go through the CRI ImageService, so they use the CRI's registry config
// (hosts.toml) and unpack as the kubelet's would. CRI reports no progress: it is read from the
// content store's writes in flight and the layers already there. The names being pulled are kept so
// a removal never takes an image a pull is writing.
import type { ContainerdClient } from './containerd-client.js'
import { containerdName } from './containerd-images.js'
import type { WireContentStatus } from './containerd-wire.js'
import { PullError, RuntimeUnavailableError, type PullRequest } from './runtime.js'

export class ContainerdPulls {
  private readonly pulling = new Map<string, number>()

  constructor(
    private readonly client: ContainerdClient,
    private readonly onUnavailable: (err: Error) => void,
  ) {}

  isPulling(name: string): boolean {
    return this.pulling.has(name) || this.pulling.has(containerdName(name))
  }

  async pull(req: PullRequest): Promise<void> {
    const ref = req.reference.startsWith('sha256:') ? `${req.name}@${req.reference}` : `${req.name}:${req.reference}`
    const names = [containerdName(ref)]
    for (const n of names) this.pulling.set(n, (this.pulling.get(n) ?? 0) + 1)
    const progress = setInterval(() => void this.reportProgress(req).catch(() => undefined), 500)
    try {
      await this.client.call(
        'criImages',
        'PullImage',
        { image: { image: ref }, auth: criAuth(req.auth) },
        // a pull may take long: the stall timeout of the caller (its signal) bounds it instead
        { deadlineMs: 24 * 3600 * 1000, signal: req.signal },
      )
      await this.reportProgress(req)
    } catch (err) {
      if (req.signal.aborted) throw new PullError(String(req.signal.reason?.message ?? 'aborted'), false)
      if (err instanceof RuntimeUnavailableError) {
        this.onUnavailable(err)
        throw err
      }
      const message = (err as Error).message
      throw new PullError(message, /not found|404|manifest unknown/i.test(message))
    } finally {
      clearInterval(progress)
      for (const n of names) {
        const left = (this.pulling.get(n) ?? 1) - 1
        if (left > 0) this.pulling.set(n, left)
        else this.pulling.delete(n)
      }
    }
  }

  private async reportProgress(req: PullRequest): Promise<void> {
    const statuses = await this.client.call<{ statuses?: WireContentStatus[] }>('content', 'ListStatuses', {
      filters: [],
    })
    const writing = new Map<string, number>()
    for (const s of statuses.statuses ?? []) writing.set(s.expected || s.ref, s.offset)
    let done = 0
    for (const layer of req.layers) {
      const partial = writing.get(layer.digest) ?? [...writing].find(([k]) => k.includes(layer.digest))?.[1]
      if (partial !== undefined) done += partial
      else if (await this.hasBlob(layer.digest)) done += layer.sizeBytes
    }
    req.onProgress({ bytesDone: Math.min(done, req.totalBytes), bytesTotal: req.totalBytes })
  }

  private async hasBlob(digest: string): Promise<boolean> {
    return this.client.call('content', 'Info', { digest }).then(
      () => true,
      () => false,
    )
  }
}

function criAuth(auth: Record<string, string> | undefined): object | undefined {
  if (!auth) return undefined
  return {
    username: auth.username ?? '',
    password: auth.password ?? '',
    auth: auth.auth ?? '',
    serverAddress: auth.serveraddress ?? auth.serverAddress ?? '',
    identityToken: auth.identitytoken ?? auth.identityToken ?? '',
    registryToken: auth.registrytoken ?? auth.registryToken ?? '',
  }
}

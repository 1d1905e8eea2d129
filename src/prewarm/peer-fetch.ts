// Fetching an image from another host of the fleet instead of its registry: the peer's export
// streams into `docker load`, and the result is kept only when its id is the config digest the
// registry's manifest names for the wanted reference. A peer cannot substitute content: the archive
// is refused as it streams unless its one image config hashes to that digest, and the loaded id is
// checked again; it cannot name images either: the names an archive carries are stripped before
// `docker load` could apply them (src/peers/archive-filter.ts).
import { readFileSync } from 'node:fs'
import { nodeFetch } from '../node-fetch.js'
import { checkPeerUrlHost, PeerAddressError, peerLookup } from '../peers/peer-address.js'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { familiarName, type ImageRef } from '../registry/reference.js'

export interface PeerSource {
  /** the serving host's id */
  host: string
  /** its export URL for this image: http(s)://HOST:PORT/v1/images/{config digest}/export */
  url: string
  /** the peer token the coordinator issued for this image on that host */
  token: string
}

export interface PeerFetchOptions {
  runtime: Pick<ContainerRuntime, 'loadImage' | 'removeImage' | 'tagImage' | 'untagImage' | 'listImagesWithContainers'>
  ref: ImageRef
  /** the registry's config digest for `ref`: the only image id accepted */
  configDigest: string
  signal: AbortSignal
  /** each chunk as it arrives: progress for the stall timer, bytes for the counters */
  onBytes(n: number): void
  /** the whole archive has arrived; the engine now registers its layers, silently */
  onReceived?(): void
  /** the fleet CA (a PEM file, peers.tls.caFile) an https:// peer must present a certificate from;
   * null or absent: the system CAs */
  caFile?: string | null
  /** peers.allowLoopback: a peer may be on 127.0.0.1 / ::1 (a fleet on one machine); absent: refused */
  allowLoopback?: boolean
}

/** loads the image from `peer`, checks it and names it; the bytes read. Throws when any of it fails. */
export async function fetchFromPeer(peer: PeerSource, o: PeerFetchOptions): Promise<number> {
  if (!o.runtime.loadImage) throw new Error('this runtime cannot load images')
  const peerConnection = await openPeer(peer, o)
  try {
    return await loadFromPeer(peer, o, o.runtime.loadImage.bind(o.runtime), peerConnection.res)
  } finally {
    await peerConnection.close()
  }
}

interface PeerResponse {
  ok: boolean
  status: number
  headers?: { get(name: string): string | null }
  body: unknown
}

/** at most `max` bytes of a refusal's body, the rest left unread: a peer cannot make the fetcher hold more */
async function readCapped(res: PeerResponse, max: number): Promise<string> {
  const body = res.body as ReadableStream<Uint8Array> | null
  if (!body) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < max) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.length
    }
  } catch {
    // a body cut short still gives what came
  } finally {
    await reader.cancel().catch(() => undefined)
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8')
}

/**
 * The export request, connected only to a peer address (src/peers/peer-address.ts): an IP literal is
 * checked here, a name when it is resolved for the connection. Over https with a fleet CA when
 * peers.tls.caFile names one, else the system CAs.
 */
async function openPeer(peer: PeerSource, o: PeerFetchOptions): Promise<{ res: PeerResponse; close(): Promise<void> }> {
  const allowLoopback = o.allowLoopback ?? false
  let url: URL
  try {
    url = new URL(peer.url)
    checkPeerUrlHost(url, allowLoopback)
  } catch (err) {
    const message = `peer ${peer.host}: ${(err as Error).message}`
    throw err instanceof PeerAddressError ? new PeerAddressError(message) : new Error(message)
  }
  let ca: Buffer | undefined
  if (o.caFile && url.protocol === 'https:') {
    try {
      ca = readFileSync(o.caFile)
    } catch (err) {
      throw new Error(`peers.tls.caFile: cannot read ${o.caFile}: ${(err as Error).message}`)
    }
  }
  // No redirects (nodeFetch follows none): the coordinator named this URL, and a peer must not send
  // the token or the fetch elsewhere.
  const res = await nodeFetch(url, {
    headers: { authorization: `Bearer ${peer.token}` },
    signal: o.signal,
    ca,
    lookup: peerLookup(allowLoopback),
  }).catch((err: Error) => {
    if (err.cause instanceof PeerAddressError) throw new PeerAddressError(`peer ${peer.host}: ${err.cause.message}`)
    throw err
  })
  // a refused archive's body is cut: nothing waits for the rest of it
  return { res, close: () => (res.body?.cancel() ?? Promise.resolve()).catch(() => undefined) }
}

async function loadFromPeer(
  peer: PeerSource,
  o: PeerFetchOptions,
  loadImage: NonNullable<ContainerRuntime['loadImage']>,
  res: PeerResponse,
): Promise<number> {
  if (!res.ok || !res.body) {
    const detail = peerErrorDetail(await readCapped(res, 4096))
    const message = `peer ${peer.host} answered ${res.status}${detail ? `: ${detail}` : ''}`
    if (res.status === 503) throw new PeerBusyError(message, retryAfterSeconds(res.headers?.get('retry-after')))
    throw new Error(message)
  }
  // loaded at the first peer fetch: a host that never fetches from peers never loads tar-stream
  const { filterPeerArchive } = await import('../peers/archive-filter.js')
  let bytes = 0
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length
      o.onBytes(chunk.length)
      done(null, chunk)
    },
  })
  // A body that fails (the peer died) fails `counted`, which fails the filter and aborts the load.
  pipeline(Readable.fromWeb(res.body as never), counted).catch(() => undefined)
  counted.once('end', () => o.onReceived?.())
  let peerError: Error | null = null
  counted.once('error', (err) => (peerError = err))
  // The names on this host before the load: should the engine apply a name after all (the filter
  // lets none through, so that is a breach), each is put back as it was.
  const namesBefore = await imageNames(o.runtime)
  const loaded = await loadImage(filterPeerArchive(counted, o.configDigest), o.signal).catch(async (err: Error) => {
    // The peer's answer is cut at once, so it does not hold one of its upload slots for nothing.
    counted.destroy()
    // The peer's answer failed first (it died, it was cut): the load's own error ("aborted") would
    // blame this host's engine.
    if (peerError) throw new Error(`peer ${peer.host} stopped sending its archive: ${(peerError as Error).message}`)
    // The engine refusing or unreachable, or this host's disk full: not the peer's doing.
    if (isLocalLoadFailure(err)) throw new LocalLoadError(err.message)
    throw err
  })
  const touched = [...new Set([...loaded.names, ...loaded.renamed])]
  if (touched.length > 0) {
    const namesAfter = await imageNames(o.runtime)
    await undoNames(o.runtime, namesBefore, touched)
    // what the load brought goes again, unnamed and never forced; an image held before stays
    const heldBefore = new Set(namesBefore.values())
    const brought = new Set([...loaded.ids, ...touched.map((name) => namesAfter.get(name) ?? '')])
    for (const id of brought)
      if (id && !heldBefore.has(id)) await o.runtime.removeImage({ id, refs: [] }).catch(() => undefined)
    throw new PeerBreachError(
      `peer ${peer.host} sent an archive that named images on this host (${touched.join(', ')}): ` +
        'names put back, nothing kept',
    )
  }
  const wrong = loaded.ids.filter((id) => id !== o.configDigest)
  if (wrong.length > 0 || !loaded.ids.includes(o.configDigest)) {
    // The filter lets no other image through; should the engine still report one, it goes, never
    // forced: an image a container uses stays.
    for (const id of wrong) await o.runtime.removeImage({ id, refs: [] })
    throw new Error(`peer ${peer.host} sent ${loaded.ids.join(', ') || 'no image'}, not ${o.configDigest}: removed`)
  }
  // As a pull would name it: repo:tag. An image wanted by digest alone keeps no name here (Docker
  // makes digest names only on a pull); the wanted-set check finds it by id.
  if (o.ref.tag)
    await o.runtime.tagImage(o.configDigest, `${familiarName(o.ref.domain, o.ref.repository)}:${o.ref.tag}`)
  return bytes
}

/** every image name on this host and the image it names */
async function imageNames(runtime: PeerFetchOptions['runtime']): Promise<Map<string, string>> {
  const { images } = await runtime.listImagesWithContainers()
  return new Map(images.flatMap((image) => image.repoTags.map((tag) => [tag, image.id] as const)))
}

/**
 * Puts each of `names` back on the image it named before a load, or takes it off where it named
 * nothing then. Only the names the engine said the load applied: a pull running beside the load
 * may move other names meanwhile, and those are its own.
 */
async function undoNames(runtime: PeerFetchOptions['runtime'], before: Map<string, string>, names: string[]) {
  for (const name of new Set(names)) {
    const was = before.get(name)
    if (was) await runtime.tagImage(was, name)
    else await runtime.untagImage(name).catch(() => undefined)
  }
}

/**
 * The reason a refusing peer gives, as gpuhost's listener writes it (`{"error": "..."}`): one line,
 * printable, at most 200 characters. Anything else a peer sends is not repeated into logs and results.
 */
export function peerErrorDetail(body: string): string {
  let error: unknown
  try {
    error = (JSON.parse(body) as { error?: unknown }).error
  } catch {
    return ''
  }
  return typeof error === 'string' ? error.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200) : ''
}

/** the peer serves its most uploads now (503): it may be asked again after `retryAfterSeconds` */
export class PeerBusyError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message)
    this.name = 'PeerBusyError'
  }
}

/** Retry-After in seconds (an HTTP date is not sent by gpuhost's listener): 1 to 30, else 5 */
export function retryAfterSeconds(header: string | null | undefined): number {
  const n = Number(header)
  return header && Number.isFinite(n) ? Math.min(30, Math.max(1, Math.round(n))) : 5
}

/**
 * The engine applied a name from a peer's archive: the peer sent what no gpuhost listener sends.
 * The names are put back; the coordinator leaves the peer out of the rollout at once.
 */
export class PeerBreachError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PeerBreachError'
  }
}

/** the load failed on this host (its engine, its disk), not for what the peer sent */
export class LocalLoadError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LocalLoadError'
  }
}

function isLocalLoadFailure(err: Error & { statusCode?: number; code?: string }): boolean {
  return (
    err.statusCode !== undefined ||
    ['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EACCES'].includes(err.code ?? '') ||
    /no space left on device/i.test(err.message)
  )
}

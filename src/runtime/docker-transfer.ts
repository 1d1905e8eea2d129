// `docker save` and `docker load` of one image, as streams: how hosts hand images to each other
// without a registry in between. Saving is by image id, never by name, so the archive carries no
// tags: the receiver names the image itself, after it has checked the id.
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { pathPart, statusOf, type DockerApi } from './docker-api.js'
import type { LoadResult } from './runtime.js'

interface LoadMessage {
  stream?: string
  error?: string
  errorDetail?: { message?: string }
}

/** the archive of image `id` (sha256:…); null when dockerd has no such image */
export async function saveImage(api: DockerApi, id: string): Promise<Readable | null> {
  try {
    await api.inspectImage(id)
  } catch (err) {
    if (statusOf(err) === 404) return null
    throw err
  }
  // No deadline: dockerd writes a whole image out before the first byte (minutes for many GB).
  // The fetching peer's connection bounds it: when it goes, the server destroys this stream.
  return (await api.docker.getImage(pathPart(id)).get()) as Readable
}

/**
 * Loads an archive; returns the ids dockerd says it loaded, and the names it put on them (an
 * archive saved by id carries none). An archive that fails mid-way (the sender died) aborts the
 * upload, so dockerd drops what it had, rather than waiting for the rest; an archive cut short or
 * damaged makes dockerd answer an error line, thrown here: nothing was loaded then.
 */
export async function loadImage(api: DockerApi, archive: Readable, signal?: AbortSignal): Promise<LoadResult> {
  const cut = new AbortController()
  let archiveError: Error | null = null
  archive.once('error', (err) => {
    archiveError = err
    cut.abort(err)
  })
  const abortSignal = signal ? AbortSignal.any([signal, cut.signal]) : cut.signal
  let out: Readable
  try {
    // No deadline: a quiet load says nothing until every layer is registered (minutes for many
    // GB). The caller's signal bounds it (the prewarm attempt's timeout).
    out = (await api.docker.loadImage(archive, { quiet: true, abortSignal })) as Readable
  } catch (err) {
    throw archiveError ?? err
  }
  const ids: string[] = []
  const names: string[] = []
  const renamed: string[] = []
  let failure: string | null = null
  for await (const line of createInterface({ input: out, crlfDelay: Infinity })) {
    if (!line.trim()) continue
    let msg: LoadMessage
    try {
      msg = JSON.parse(line) as LoadMessage
    } catch {
      continue
    }
    if (msg.error || msg.errorDetail) failure = msg.errorDetail?.message ?? msg.error ?? 'load failed'
    const loaded = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(msg.stream ?? '')
    if (loaded) ids.push(loaded[1])
    const named = /Loaded image: (\S+)/.exec(msg.stream ?? '')
    if (named) names.push(named[1])
    const moved = /The image (\S+) already exists, renaming the old one/.exec(msg.stream ?? '')
    if (moved) renamed.push(moved[1])
  }
  if (archiveError) throw archiveError
  if (failure !== null) throw new Error(`docker load: ${failure}`)
  return { ids, names, renamed }
}

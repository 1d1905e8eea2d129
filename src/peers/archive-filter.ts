// What a peer's archive may do on its way into `docker load`. `docker load` applies the names an
// archive carries (manifest.json RepoTags, the legacy `repositories` file, OCI index annotations)
// as it loads, before any id check could run: a peer could otherwise move a name such as
// nvidia/cuda:12.2 on the fetching host onto its own content. So the archive is rewritten as it
// streams: names are taken out, and the archive must describe exactly one image whose config
// hashes to the expected digest (the image id), or the stream fails before its end, which aborts
// the load (dockerd unpacks the whole archive before it loads anything). Only small entries
// (configs, manifests) are held in memory; layers pass through.
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import { Readable } from 'node:stream'
import tar from 'tar-stream'

/** configs and manifests are a few KiB; larger entries stream through unread */
const SMALL_ENTRY_BYTES = 4 * 1024 * 1024
/** a `docker save` archive has a few entries per layer; this many means something else */
const MAX_ENTRIES = 100_000
/** names docker load or an OCI importer reads image names from */
const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name']

interface ManifestEntry {
  Config?: unknown
  RepoTags?: unknown
}

/** an archive path as dockerd resolves it, rooted in its unpack directory; null for the root itself */
export function archivePath(name: string): string | null {
  const p = posix.normalize(`/${name}`).replace(/^\/+/, '').replace(/\/+$/, '')
  return p === '' ? null : p
}

/**
 * `archive` (a `docker save` tar) with every image name removed; fails unless it holds exactly one
 * image whose id (the sha256 of its config) is `configDigest`.
 */
export function filterPeerArchive(archive: Readable, configDigest: string): Readable {
  const extract = boundedExtract()
  const pack = tar.pack()
  // Nothing is read from `archive` until the reader first reads, and a failure before then waits for
  // that read: an error emitted before the reader listens would be lost and leave it waiting.
  let started = false
  let pendingError: Error | null = null
  const out = new Readable({
    read() {
      if (pendingError) return out.destroy(pendingError)
      if (!started) {
        started = true
        archive.pipe(extract)
      }
      pack.resume()
    },
  })
  pack.on('data', (chunk: Buffer) => {
    if (!out.push(chunk)) pack.pause()
  })
  pack.on('end', () => out.push(null))
  /** digests of the small regular files, by path; 'link' for links, which a config may not be */
  const seen = new Map<string, string>()
  /** every directory an entry so far lies in or is: none may become a link */
  const directories = new Set<string>()
  let configPaths: string[] | null = null
  let failed = false
  let finalized = false
  let count = 0
  const fail = (reason: string | Error) => {
    if (failed) return
    failed = true
    const err = typeof reason === 'string' ? new Error(`peer archive refused: ${reason}`) : reason
    extract.destroy(err)
    pack.destroy(err)
    archive.destroy()
    if (started) out.destroy(err)
    else pendingError = err
  }
  // Errors reach the reader through `fail` on the output; the events of the inner streams are expected.
  const ignore = () => undefined
  pack.on('error', ignore)
  // the reader went away (the load was cut): stop reading the peer
  out.on('close', () => {
    if (!failed && !finalized) fail('the load stopped reading it')
  })

  extract.on('entry', (header, stream, next) => {
    stream.on('error', ignore)
    if (failed) return
    if (++count > MAX_ENTRIES) return fail(`more than ${MAX_ENTRIES} entries`)
    const path = archivePath(header.name)
    const isFile = header.type === 'file' || header.type === 'contiguous-file'
    if (path === null) {
      // "./": the unpack directory itself, as `tar -C dir .` writes it
      if (header.type === 'directory') return stream.pipe(pack.entry(header, next).on('error', ignore))
      return fail(`entry ${JSON.stringify(header.name)} has no name`)
    }
    // dockerd's unpack follows a link in a path's parents: `d -> .` then `d/manifest.json` would
    // write names this filter never read. `docker save` links files only, never directories, so an
    // entry under a link, or a link where a directory was, is refused.
    const parents = path
      .split('/')
      .slice(0, -1)
      .map((_, i, all) => all.slice(0, i + 1).join('/'))
    const underLink = parents.find((p) => seen.get(p) === 'link')
    if (underLink !== undefined) return fail(`entry ${JSON.stringify(header.name)} lies under the link ${underLink}`)
    for (const p of parents) directories.add(p)
    const isLink = header.type === 'symlink' || header.type === 'link'
    if (isLink && directories.has(path))
      return fail(`entry ${JSON.stringify(header.name)} turns a directory into a link`)
    if (header.type === 'directory') directories.add(path)
    if (isLink) seen.set(path, 'link')
    else seen.delete(path)
    const named = path === 'manifest.json' || path === 'index.json' || path === 'repositories'
    if (named && !isFile) return fail(`${path} is not a regular file`)
    if (path === 'repositories') {
      // the legacy name file: dropped whole
      stream.on('end', () => next())
      stream.resume()
      return
    }
    if (!isFile || (header.size ?? 0) > SMALL_ENTRY_BYTES) {
      if (path === 'manifest.json' || path === 'index.json') return fail(`${path} is too large`)
      stream.pipe(pack.entry(header, next).on('error', ignore))
      return
    }
    const chunks: Buffer[] = []
    stream.on('data', (c: unknown) => chunks.push(c as Buffer))
    stream.on('end', () => {
      if (failed) return
      let body: Buffer = Buffer.concat(chunks)
      seen.set(path, `sha256:${createHash('sha256').update(body).digest('hex')}`)
      try {
        if (path === 'manifest.json') {
          const rewritten = rewriteManifest(body)
          configPaths = rewritten.configPaths
          body = rewritten.body
        } else if (path === 'index.json') body = rewriteIndex(body)
      } catch (err) {
        return fail((err as Error).message)
      }
      pack.entry({ ...header, size: body.length }, body, next)
    })
  })
  extract.on('finish', () => {
    if (failed) return
    const problem = checkConfigs(configPaths, seen, configDigest)
    if (problem) return fail(problem)
    finalized = true
    pack.finalize()
  })
  extract.on('error', (err: Error) => fail(`not a tar archive: ${err.message}`))
  archive.on('error', (err: Error) => fail(err))
  return out
}

/** manifest.json with RepoTags cleared, and the config path of each image it lists */
function rewriteManifest(body: Buffer): { body: Buffer; configPaths: string[] } {
  let manifest: unknown
  try {
    manifest = JSON.parse(body.toString('utf8'))
  } catch {
    throw new Error('manifest.json is not JSON')
  }
  if (!Array.isArray(manifest)) throw new Error('manifest.json is not a list')
  const configPaths = (manifest as ManifestEntry[]).map((m) => {
    const config = typeof m?.Config === 'string' ? archivePath(m.Config) : null
    if (config === null) throw new Error('manifest.json lists an image without a config path')
    m.RepoTags = null
    return config
  })
  return { body: Buffer.from(JSON.stringify(manifest)), configPaths }
}

/** index.json (OCI layout) without the annotations importers name images from */
function rewriteIndex(body: Buffer): Buffer {
  let index: { manifests?: { annotations?: Record<string, string> }[] }
  try {
    index = JSON.parse(body.toString('utf8')) as typeof index
  } catch {
    throw new Error('index.json is not JSON')
  }
  for (const m of Array.isArray(index?.manifests) ? index.manifests : [])
    if (m?.annotations && typeof m.annotations === 'object')
      for (const key of NAME_ANNOTATIONS) delete m.annotations[key]
  return Buffer.from(JSON.stringify(index))
}

/** why the archive's images are not exactly the one expected; null when they are */
function checkConfigs(configPaths: string[] | null, seen: Map<string, string>, configDigest: string): string | null {
  if (configPaths === null) return 'no manifest.json'
  if (configPaths.length !== 1) return `it lists ${configPaths.length} images, not one`
  const config = configPaths[0]
  // dockerd follows links inside its unpack directory: a config reached through one could be any file
  const parts = config.split('/')
  for (let i = 1; i <= parts.length; i++)
    if (seen.get(parts.slice(0, i).join('/')) === 'link') return `its config ${config} is reached through a link`
  const digest = seen.get(config)
  if (!digest) return `its config ${config} is missing or too large`
  if (digest !== configDigest) return `its image is ${digest}, not ${configDigest}`
  return null
}

interface ExtractInternals {
  _parse(size: number, onparse: unknown): void
  _stream: unknown
  destroy(err?: Error): void
}

/**
 * tar-stream's extract, refusing a pax or GNU long-name header larger than SMALL_ENTRY_BYTES: it
 * holds such a header whole before it emits the entry, so a peer could otherwise make this host
 * allocate whatever size the header claims. (tar-stream 2 reads a header's body through `_parse`
 * while no entry stream is open; an entry's own data is read while one is.)
 */
function boundedExtract(): tar.Extract {
  const extract = tar.extract()
  const internals = extract as unknown as ExtractInternals
  const parse = internals._parse
  internals._parse = function (this: ExtractInternals, size: number, onparse: unknown) {
    if (size > SMALL_ENTRY_BYTES && this._stream === null)
      return this.destroy(new Error(`a tar header of ${size} bytes`))
    return parse.call(this, size, onparse)
  }
  return extract
}

// What a peer's archive may do on its way into `docker load`. `docker load` applies the names an
// archive carries (manifest.json RepoTags, the legacy `repositories` file, OCI index annotations)
// as it loads, before any id check could run: a peer could otherwise move a name such as
// nvidia/cuda:12.2 on the fetching host onto its own content. So the archive is rebuilt as it
// streams, never forwarded: every entry gets a fresh header written here from the few fields read
// (name, type, permission bits, size, mtime, link target), names are taken out, and the archive must
// describe exactly one image whose config hashes to the expected digest (the image id), or the
// stream fails before its end, which aborts the load (dockerd unpacks the whole archive before it
// loads anything). Only small entries (configs, manifests) are held in memory; layers pass through.
//
// Why rebuild: dockerd reads the archive with Go's archive/tar, which honours records tar-stream
// does not (a pax `GNU.sparse.name` renames an entry; a pax `size` left on a rewritten entry shifts
// every later header). Forwarding an input header forwards those records, and dockerd would then
// load entries this filter never inspected. A header written from scratch carries only what was
// checked; an input record this filter does not understand refuses the archive instead.
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import { Readable } from 'node:stream'
import tar from 'tar-stream'

/** configs and manifests are a few KiB; larger entries stream through unread */
const SMALL_ENTRY_BYTES = 4 * 1024 * 1024
/** a `docker save` archive has a few entries per layer; this many means something else */
const MAX_ENTRIES = 100_000
/** longest entry name or link target taken; `docker save` writes names under 100 bytes */
const MAX_NAME_BYTES = 4096
/** names docker load or an OCI importer reads image names from */
const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name']
/**
 * the pax records an input entry may carry: what tar-stream reads into the fields kept, or what a
 * rebuilt header drops harmlessly. Any other (GNU.sparse.*, SCHILY.*, LIBARCHIVE.*, …) is a meaning
 * Go's reader may give the entry that this filter cannot see, so it refuses the archive.
 */
const PAX_KEYS = new Set(['path', 'linkpath', 'size', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname'])
/** the largest size a ustar header's octal field holds; above it the size goes in a pax record */
const USTAR_MAX_SIZE = 0o77777777777
/** the latest mtime a ustar header holds, in seconds */
const USTAR_MAX_MTIME = 0o77777777777
/** the entry types an image archive needs; devices, fifos, hard links and the rest are refused */
const ENTRY_TYPES = new Set(['file', 'contiguous-file', 'directory', 'symlink'])

/** a tar header with its pax records, which tar-stream reads and writes but its types leave out */
type PaxHeaders = tar.Headers & { pax?: Record<string, string> }

interface ManifestEntry {
  Config?: unknown
  RepoTags?: unknown
}

/**
 * An archive path as this filter writes it: relative, normalised, no `..` element; null for the
 * unpack directory itself (`./`). Absolute names, `..` elements, control characters and overlong
 * names throw: dockerd's chroot contains them today, but nothing in an image archive needs them.
 */
export function archivePath(name: string): string | null {
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new Error(`an entry name of ${Buffer.byteLength(name)} bytes`)
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) throw new Error(`entry ${JSON.stringify(name)} has a control character in its name`)
  if (name.startsWith('/')) throw new Error(`entry ${JSON.stringify(name)} has an absolute name`)
  if (name.split('/').includes('..')) throw new Error(`entry ${JSON.stringify(name)} has a .. element`)
  const p = posix.normalize(name).replace(/\/+$/, '')
  return p === '' || p === '.' ? null : p
}

/**
 * The header written for an input entry: only the fields this filter read and checked, with owner
 * 0:0 and no setuid, setgid or sticky bit; a pax record only where ustar cannot hold the value
 * (tar-stream writes `path`/`linkpath` for long names itself; `size` is added above 8 GiB).
 */
export function rebuiltHeader(
  path: string,
  input: { type?: string | null; mode?: number; size?: number; mtime?: Date; linkname?: string | null },
  size: number,
): PaxHeaders {
  const seconds = Math.floor((input.mtime?.getTime() ?? 0) / 1000)
  const header: PaxHeaders = {
    name: input.type === 'directory' ? `${path}/` : path,
    type: input.type === 'contiguous-file' ? 'file' : (input.type as tar.Headers['type']),
    mode: (input.mode ?? 0o644) & 0o777,
    uid: 0,
    gid: 0,
    size: input.type === 'file' || input.type === 'contiguous-file' ? size : 0,
    mtime: new Date(Math.min(Math.max(Number.isFinite(seconds) ? seconds : 0, 0), USTAR_MAX_MTIME) * 1000),
  }
  if (input.type === 'symlink') header.linkname = input.linkname ?? ''
  if ((header.size ?? 0) > USTAR_MAX_SIZE) header.pax = { size: String(header.size) }
  return header
}

/** why an input entry's header cannot be rebuilt faithfully; null when it can */
function refusedHeader(
  header: PaxHeaders,
  path: string | null,
  globalPax: Record<string, string> | null,
): string | null {
  const name = JSON.stringify(header.name)
  for (const records of [header.pax, globalPax])
    for (const key of Object.keys(records ?? {}))
      if (!PAX_KEYS.has(key)) return `entry ${name} carries the pax record ${key}, which this host does not read`
  if (!ENTRY_TYPES.has(header.type ?? '')) return `entry ${name} is a ${header.type ?? 'entry of unknown type'}`
  if (header.pax?.size !== undefined && !/^\d{1,15}$/.test(header.pax.size))
    return `entry ${name} has the pax size ${JSON.stringify(header.pax.size.slice(0, 20))}`
  if (!Number.isSafeInteger(header.size ?? 0) || (header.size ?? 0) < 0) return `entry ${name} has no valid size`
  if (header.type === 'symlink') {
    const target = header.linkname ?? ''
    if (target === '' || target.startsWith('/') || Buffer.byteLength(target) > MAX_NAME_BYTES)
      return `entry ${name} links to ${JSON.stringify(target)}`
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(target)) return `entry ${name} links to a name with a control character`
    const resolved = posix.normalize(posix.join(posix.dirname(path ?? '.'), target))
    if (resolved === '..' || resolved.startsWith('../')) return `entry ${name} links outside the archive`
  }
  return null
}

/**
 * `archive` (a `docker save` tar) rebuilt with fresh headers and every image name removed; fails
 * unless it holds exactly one image whose id (the sha256 of its config) is `configDigest`.
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
    let path: string | null
    try {
      path = archivePath(header.name)
    } catch (err) {
      return fail((err as Error).message)
    }
    const refused = refusedHeader(header, path, (extract as unknown as ExtractInternals)._paxGlobal)
    if (refused) return fail(refused)
    const isFile = header.type === 'file' || header.type === 'contiguous-file'
    if (path === null) {
      // "./": the unpack directory itself, as `tar -C dir .` writes it; nothing to write
      if (header.type !== 'directory') return fail(`entry ${JSON.stringify(header.name)} has no name`)
      stream.on('end', () => next())
      stream.resume()
      return
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
    const isLink = header.type === 'symlink'
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
    const size = header.size ?? 0
    if (!isFile || size > SMALL_ENTRY_BYTES) {
      if (path === 'manifest.json' || path === 'index.json') return fail(`${path} is too large`)
      // pack checks that exactly `size` bytes were written, so the header cannot lie about the data
      stream.pipe(pack.entry(rebuiltHeader(path, header, size), next).on('error', ignore))
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
      pack.entry(rebuiltHeader(path, header, body.length), body, next)
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
    const config = typeof m?.Config === 'string' ? configPath(m.Config) : null
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

/** a manifest's config path as the entry it names; null for one no entry could have */
function configPath(name: string): string | null {
  try {
    return archivePath(name)
  } catch {
    return null
  }
}

interface ExtractInternals {
  _parse(size: number, onparse: unknown): void
  _stream: unknown
  /** the records of the last global pax header, which tar-stream merges into later entries */
  _paxGlobal: Record<string, string> | null
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

// Docker's Engine API through dockerode: what the runtime adds around it. Every request gets a
// deadline (docker.timeoutSeconds) unless its caller bounds it otherwise: a frozen dockerd accepts
// the connection and never answers. dockerode's own `timeout` cannot be the deadline: it is one
// socket-idle limit for every request of the client, and the event stream is silent for hours, a
// save writes nothing until the whole image is out, /system/df walks every layer first. A failed
// request keeps the HTTP status (`statusCode`) and the daemon's `{"message": …}` (`json`), as
// docker-modem gives them; a socket error (refused, missing socket, reset) passes with its errno.
import type Dockerode from 'dockerode'
import type { DockerOptions } from 'dockerode'
import type { RegistryTrust } from '../registry/insecure.js'

/** dockerode passes an abort signal on these, where @types/dockerode declares no options for them */
export interface SignalledCalls {
  ping(options: { abortSignal?: AbortSignal }): Promise<unknown>
  version(options: { abortSignal?: AbortSignal }): Promise<Dockerode.DockerVersion>
  info(options: { abortSignal?: AbortSignal }): Promise<DockerInfo>
  df(options: { abortSignal?: AbortSignal }): Promise<unknown>
}

/** the fields of GET /info that are read (@types/dockerode types it as any) */
export interface DockerInfo {
  DockerRootDir?: string
  ServerVersion?: string
  DefaultRuntime?: string
  Runtimes?: Record<string, unknown>
  RegistryConfig?: RegistryTrust
}

/** GET /images/{name}/json, with the field @types/dockerode lacks */
export type InspectedImage = Dockerode.ImageInspectInfo & { Metadata?: { LastTagTime?: string } }

/** docker-modem puts `version` ('v1.43') before every path; @types/docker-modem leaves the field out */
interface VersionedModem {
  version?: string
}

/** a request dockerd did not answer within its deadline: read as dockerd being away */
export class DockerTimeoutError extends Error {
  override readonly name = 'DockerTimeoutError'
  readonly code = 'ETIMEDOUT'
  constructor(what: string, ms: number) {
    super(`dockerd did not answer ${what} within ${ms / 1000} s (timeout)`)
  }
}

export class DockerApi {
  constructor(
    /** the one dockerode client of this runtime */
    readonly docker: Dockerode,
    /** the deadline of one request; 0: none */
    private readonly timeoutMs: number,
  ) {}

  /** the calls whose options @types/dockerode leaves out */
  get signalled(): SignalledCalls {
    return this.docker as unknown as SignalledCalls
  }

  /** the negotiated API version (e.g. 1.43); unset: requests go unprefixed, in the daemon's own */
  get apiVersion(): string | undefined {
    return (this.docker.modem as unknown as VersionedModem).version?.replace(/^v/, '')
  }

  set apiVersion(version: string | undefined) {
    ;(this.docker.modem as unknown as VersionedModem).version = version === undefined ? undefined : `v${version}`
  }

  /**
   * Runs one request under the deadline: `run` passes the signal as dockerode's `abortSignal`.
   * The deadline's abort is told from any other (a caller's signal) by its own signal.
   */
  async within<T>(what: string, run: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (this.timeoutMs <= 0) return run(undefined)
    const signal = AbortSignal.timeout(this.timeoutMs)
    try {
      return await run(signal)
    } catch (err) {
      if (signal.aborted) throw new DockerTimeoutError(what, this.timeoutMs)
      throw err
    }
  }

  /**
   * GET /images/{name}/json under the deadline. dockerode's Image.inspect sends no abort signal, so
   * the request is dialled on its modem with the same options and the signal.
   */
  inspectImage(name: string): Promise<InspectedImage> {
    return this.within(`GET /images/${name}/json`, (abortSignal) => dial(this.docker, name, abortSignal))
  }
}

function dial(docker: Dockerode, name: string, abortSignal: AbortSignal | undefined) {
  return new Promise<InspectedImage>((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/images/${pathPart(name)}/json`,
        method: 'GET',
        abortSignal,
        statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
      },
      (err, data) => (err ? reject(err) : resolve(data as InspectedImage)),
    )
  })
}

/**
 * Pure: dockerode's options. A configured socket is used as it is, whatever the environment says;
 * without one dockerode reads DOCKER_HOST (unix://, tcp://, ssh://), DOCKER_TLS_VERIFY and
 * DOCKER_CERT_PATH as the docker CLI does, and falls back to /var/run/docker.sock. Its client-wide
 * idle timeout (DOCKER_CLIENT_TIMEOUT) is always off: the deadlines are per request (above).
 */
export function dockerodeOptions(socket: string | null): DockerOptions {
  const noIdleTimeout = { timeout: undefined }
  if (socket === null) return noIdleTimeout
  return { ...noIdleTimeout, socketPath: socket, host: undefined, port: undefined, protocol: undefined }
}

/** where Docker is reached, for messages: the configured socket, else DOCKER_HOST, else the default */
export function dockerAddress(socket: string | null, env: NodeJS.ProcessEnv = process.env): string {
  return socket ?? (env.DOCKER_HOST || '/var/run/docker.sock')
}

/**
 * Pure: an image name, container id or volume name as one path part. The API routes names with
 * their slashes, colons and @ (`/images/reg:5000/a/b@sha256:…/json`), so those stay; anything
 * else that is not plain (`?`, `#`, `%`, spaces) is escaped and cannot reach another route.
 * dockerode puts names into paths as they are, so every name it is given passes through here.
 */
export function pathPart(name: string): string {
  return encodeURIComponent(name).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/gi, '@')
}

export function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode
  return typeof status === 'number' ? status : undefined
}

/**
 * Docker's own message: `{"message": …}` of the answer, else docker-modem's wrapping of it
 * (`(HTTP code 404) no such image - …`) taken off, else the error's.
 */
export function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | undefined)?.json
  if (json && typeof json === 'object' && typeof json.message === 'string') return json.message
  const message = (err as Error | undefined)?.message ?? String(err)
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim() || message
}

/** errors that mean the daemon itself is away, not that one request was bad */
export function isConnectionError(err: unknown): boolean {
  if (statusOf(err) !== undefined) return false
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return (
    code === 'ECONNREFUSED' ||
    code === 'ENOENT' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ETIMEDOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'EACCES' ||
    /socket hang up|timeout/i.test((err as Error | undefined)?.message ?? '')
  )
}

// The one connection to dockerd that the Docker runtime speaks over: one dockerode client, made at
// the first call (dockerode loads with it, so a containerd host never loads it). It negotiates the
// API version once per daemon start (the daemon may be upgraded while the agent runs), remembers
// Docker's root dir, and tells its listeners whether Docker answers.
import type Dockerode from 'dockerode'
import type { AgentConfig } from '../config.js'
import { DockerApi, dockerAddress } from './docker-api.js'
import type { RuntimeHealth } from './runtime.js'

/** The newest Docker Engine API this agent was written against (Docker 24). */
export const CLIENT_API_VERSION = '1.43'
/** The oldest API whose image and container lists carry every field the collectors read. */
export const MIN_API_VERSION = '1.25'

/** Like the docker CLI: the lower of what the daemon speaks and what the client knows. */
export function negotiateApiVersion(serverApiVersion: string, client = CLIENT_API_VERSION): string {
  if (!/^\d+\.\d+$/.test(serverApiVersion))
    throw new Error(`dockerd reported an unreadable API version: ${JSON.stringify(serverApiVersion)}`)
  const chosen = compareApiVersions(serverApiVersion, client) < 0 ? serverApiVersion : client
  if (compareApiVersions(chosen, MIN_API_VERSION) < 0) {
    throw new Error(`dockerd speaks API ${serverApiVersion}; gpuhost needs ${MIN_API_VERSION} or newer`)
  }
  return chosen
}

export function compareApiVersions(a: string, b: string): number {
  const [aMajor, aMinor] = a.split('.').map(Number)
  const [bMajor, bMinor] = b.split('.').map(Number)
  return aMajor - bMajor || aMinor - bMinor
}

export interface DockerIdentity {
  apiVersion: string
  version: string
  rootDir: string
}

export class DockerConnection {
  private identity: DockerIdentity | null = null
  private connecting: Promise<DockerIdentity> | null = null
  private lastRootDir: string | null = null
  private current: RuntimeHealth = { reachable: false, reason: 'not collected yet' }
  private readonly listeners = new Set<(h: RuntimeHealth) => void>()
  private made: Promise<DockerApi> | null = null

  constructor(
    private readonly config: Pick<AgentConfig, 'docker'>,
    /** makes the dockerode client (src/runtime/docker.ts); a bad DOCKER_HOST throws here */
    private readonly makeClient: () => Promise<Dockerode>,
  ) {}

  /** where Docker is reached, for messages */
  get address(): string {
    return dockerAddress(this.config.docker.socket)
  }

  health(): RuntimeHealth {
    return this.current
  }

  onHealthChange(listener: (h: RuntimeHealth) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** the client as it is, without negotiating first: for the ping, which says whether to */
  pingClient(): Promise<DockerApi> {
    this.made ??= this.makeClient().then((docker) => new DockerApi(docker, this.config.docker.timeoutSeconds * 1000))
    // A client that could not be made (DOCKER_HOST unreadable) is tried again on the next call.
    this.made.catch(() => (this.made = null))
    return this.made
  }

  /** the client, speaking the negotiated API version; connects first when needed */
  async client(): Promise<DockerApi> {
    await this.connect()
    return this.pingClient()
  }

  /** Docker's root dir: from the daemon, or the last one it reported while it is away */
  async rootDir(): Promise<string> {
    try {
      return (await this.connect()).rootDir
    } catch (err) {
      if (this.lastRootDir) return this.lastRootDir
      throw new Error(
        `Docker's root dir is unknown (${(err as Error).message}); set disk.path to measure without Docker`,
      )
    }
  }

  connect(): Promise<DockerIdentity> {
    if (this.identity) return Promise.resolve(this.identity)
    this.connecting ??= this.negotiate().finally(() => {
      this.connecting = null
    })
    return this.connecting
  }

  /** the daemon may have restarted (its event stream ended): negotiate afresh on the next call */
  forget(): void {
    this.identity = null
  }

  /** a call failed in a way that says the daemon is gone: negotiate afresh next time */
  markUnreachable(err: Error): void {
    this.identity = null
    this.setHealth({ reachable: false, reason: err.message, rootDir: this.lastRootDir ?? undefined })
  }

  private setHealth(h: RuntimeHealth): void {
    this.current = h
    for (const listener of this.listeners) listener(h)
  }

  private async negotiate(): Promise<DockerIdentity> {
    try {
      const api = await this.pingClient()
      // /version answers under every API version; asked unprefixed, it says the daemon's own.
      api.apiVersion = undefined
      const version = await api.within('GET /version', (abortSignal) => api.signalled.version({ abortSignal }))
      const apiVersion = negotiateApiVersion(String(version.ApiVersion))
      api.apiVersion = apiVersion
      const info = await api.within('GET /info', (abortSignal) => api.signalled.info({ abortSignal }))
      if (!info.DockerRootDir) throw new Error('docker info did not report DockerRootDir')
      this.identity = { apiVersion, version: info.ServerVersion ?? version.Version, rootDir: info.DockerRootDir }
      this.lastRootDir = info.DockerRootDir
      this.setHealth({ reachable: true, rootDir: this.identity.rootDir, version: this.identity.version })
      return this.identity
    } catch (err) {
      this.markUnreachable(err as Error)
      throw err
    }
  }
}

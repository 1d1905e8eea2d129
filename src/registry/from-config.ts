// The registry client as the configuration describes it: prewarm.mirrors, prewarm.credentialsFile,
// and dockerd's own registry trust (read once from `docker info`, dockerd's defaults if unreadable).
import type { AgentConfig } from '../config.js'
import type { Docker } from '../runtime/docker-client.js'
import { RegistryClient } from './client.js'
import { CredentialStore } from './credentials.js'
import type { RegistryTrust } from './insecure.js'

export function createRegistryClient(config: Pick<AgentConfig, 'prewarm'>, docker: Docker, credentials = new CredentialStore(config.prewarm.credentialsFile)): RegistryClient {
  let trust: Promise<RegistryTrust> | null = null
  const readTrust = () => {
    trust ??= docker.info().then((i: { RegistryConfig?: RegistryTrust }) => i.RegistryConfig ?? {}).catch((err: Error) => {
      trust = null
      throw err
    })
    return trust
  }
  // A manifest or config read is small: it gets at most 30 s, and never more than a whole pull attempt.
  const timeoutMs = Math.min(30, config.prewarm.attemptTimeoutSeconds) * 1000
  return new RegistryClient({ mirrors: config.prewarm.mirrors, credentials, trust: readTrust, timeoutMs })
}

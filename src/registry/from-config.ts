// The registry client as the configuration describes it: prewarm.mirrors, prewarm.credentialsFile,
// and the runtime's own registry trust (read once, dockerd's defaults if unreadable).
import type { AgentConfig } from '../config.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { RegistryClient } from './client.js'
import { CredentialStore } from './credentials.js'
import type { RegistryTrust } from './insecure.js'

export function createRegistryClient(
  config: Pick<AgentConfig, 'prewarm'>,
  runtime: Pick<ContainerRuntime, 'registryTrust'>,
  credentials = new CredentialStore(config.prewarm.credentialsFile),
): RegistryClient {
  let trust: Promise<RegistryTrust> | null = null
  const readTrust = () => {
    trust ??= runtime.registryTrust().catch((err: Error) => {
      trust = null
      throw err
    })
    return trust
  }
  // A manifest or config read is small: it gets at most 30 s, and never more than a whole pull attempt.
  const timeoutMs = Math.min(30, config.prewarm.attemptTimeoutSeconds ?? 30) * 1000
  return new RegistryClient({ mirrors: config.prewarm.mirrors, credentials, trust: readTrust, timeoutMs })
}

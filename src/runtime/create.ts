// The one place a container runtime is made: the agent's composition root and each one-shot
// command call this once and hand the runtime to every part that needs it.
import type { AgentConfig } from '../config.js'
import { ContainerdRuntime, DEFAULT_CONTAINERD_SOCKET } from './containerd.js'
import { dockerAddress } from './docker-api.js'
import { DockerRuntime } from './docker.js'
import type { ContainerRuntime } from './runtime.js'

/** the socket the configured runtime is reached on, for messages */
export function runtimeSocket(config: Pick<AgentConfig, 'docker' | 'runtime'>): string {
  return config.runtime.kind === 'containerd'
    ? (config.runtime.socket ?? DEFAULT_CONTAINERD_SOCKET)
    : dockerAddress(config.docker.socket)
}

export function createRuntime(config: Pick<AgentConfig, 'docker' | 'runtime' | 'stateDir'>): ContainerRuntime {
  return config.runtime.kind === 'containerd' ? new ContainerdRuntime(config) : new DockerRuntime(config)
}

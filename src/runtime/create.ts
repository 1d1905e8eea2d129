// The one place a container runtime is made: the agent's composition root and each one-shot
// command call this once and hand the runtime to every part that needs it.
import type { AgentConfig } from '../config.js'
import { ContainerdRuntime } from './containerd.js'
import { DockerRuntime } from './docker.js'
import type { ContainerRuntime } from './runtime.js'

export function createRuntime(config: Pick<AgentConfig, 'docker' | 'runtime' | 'stateDir'>): ContainerRuntime {
  return config.runtime.kind === 'containerd' ? new ContainerdRuntime(config) : new DockerRuntime(config)
}

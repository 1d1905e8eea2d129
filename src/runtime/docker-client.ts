// The one place a Docker API client is made, so every part talks to the same socket the same way.
import Docker from 'dockerode'
import type { AgentConfig } from '../config.js'

export function createDockerClient(config: Pick<AgentConfig, 'docker'>): Docker {
  return new Docker({ socketPath: config.docker.socket, timeout: config.docker.timeoutSeconds * 1000 })
}

export type { Docker }

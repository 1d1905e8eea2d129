// The container runtime of gpuhost, pointed at a private dockerd, for tests of features.
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import type { PrivateDockerd } from '../harness/dockerd.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { DockerRuntime } from '../../src/runtime/docker.js'

export function runtimeFor(
  dockerd: PrivateDockerd,
  opts: { stateDir?: string; timeoutSeconds?: number; pingTimeoutSeconds?: number } = {},
): DockerRuntime {
  const config = parseConfig(agentConfigSchema, {
    // Inside the daemon's own test directory, which its cleanup removes.
    stateDir: opts.stateDir ?? mkdtempSync(join(dockerd.dir, 'runtime-state-')),
    docker: {
      socket: dockerd.socket,
      ...(opts.timeoutSeconds ? { timeoutSeconds: opts.timeoutSeconds } : {}),
      ...(opts.pingTimeoutSeconds ? { pingTimeoutSeconds: opts.pingTimeoutSeconds } : {}),
    },
  })
  return new DockerRuntime(config)
}

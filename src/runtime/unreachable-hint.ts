// What to do about an unreachable container runtime, from the error it gave: the first thing an
// operator of a new host needs, said where they look (the log, /readyz, `gpuhost status`). Pure.
import type { AgentConfig } from '../config.js'
import { runtimeSocket } from './create.js'

/** the fix for a runtime that cannot be reached with `reason`; null when the error says nothing we can act on */
export function runtimeUnreachableHint(config: Pick<AgentConfig, 'docker' | 'runtime'>, reason: string): string | null {
  const socket = runtimeSocket(config)
  const containerd = config.runtime.kind === 'containerd'
  const engine = containerd ? 'containerd' : 'Docker'
  const key = containerd ? 'runtime.socket' : 'docker.socket'
  const other = containerd
    ? 'runtime.kind: docker on a Docker host'
    : 'runtime.kind: containerd on a containerd or Kubernetes host'
  if (/\bENOENT\b|no such file/i.test(reason))
    return `no socket at ${socket}: start ${engine}, or set ${key} to where it listens (${other})`
  if (/\b(EACCES|EPERM)\b|permission denied/i.test(reason))
    return (
      `the agent's user may not open ${socket}: add it to the socket's group ` +
      `(${containerd ? 'or run the agent as root' : '`docker`'}), or mount the socket where it can`
    )
  if (/\bECONNREFUSED\b|connection refused/i.test(reason))
    return `nothing answers on ${socket}: is ${engine} running? (systemctl status ${engine.toLowerCase()})`
  if (/\bENOTSOCK\b|not a socket/i.test(reason)) return `${socket} is not a socket: set ${key} to ${engine}'s socket`
  return null
}

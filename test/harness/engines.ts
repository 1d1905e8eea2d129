// The container runtimes the integration suites run against, behind one face: a suite written
// once runs on a private dockerd and on a private containerd (a tap matrix over ENGINE_KINDS).
// Images come from a harness registry (oci-image.ts), pulled with each engine's own CLI.
import { startContainerd } from './containerd.js'
import { startDockerd } from './dockerd.js'
import { missingFor, type Binary } from './services.js'

export const ENGINE_KINDS = ['docker', 'containerd'] as const
export type EngineKind = (typeof ENGINE_KINDS)[number]

export const ENGINE_BINARIES: Record<EngineKind, Binary[]> = {
  docker: ['dockerd', 'docker', 'mkfs', 'docker-registry'],
  containerd: ['containerd', 'ctr', 'runc', 'mkfs', 'docker-registry'],
}

export interface TestEngine {
  kind: EngineKind
  /** the agent config that points gpuhost at this engine */
  agentConfig: Record<string, unknown>
  /** the loop-mounted filesystem the engine keeps its data on */
  mountpoint: string
  /** lets the engine pull from a loopback registry over plain HTTP */
  trustRegistry(host: string): void
  /** pulls `ref` with the engine's CLI (the image id is the config digest the registry has) */
  pull(ref: string): void
  /** makes a container from `ref` without starting it; returns its id */
  createContainer(ref: string, name: string): string
  /** names (`host:port/repo:tag`) the engine has now */
  imageNames(): string[]
  /** pins the image named `ref` where the engine can (containerd: the CRI label) */
  pin?(ref: string): void
  /** the names that carry the pin label (containerd) */
  pinnedNames?(): string[]
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export function engineMissing(kind: EngineKind): string | null {
  return missingFor(ENGINE_BINARIES[kind])
}

export async function startEngine(t: Teardown, kind: EngineKind, opts: { diskMiB?: number } = {}): Promise<TestEngine> {
  if (kind === 'docker') {
    const d = await startDockerd(t, opts)
    return {
      kind,
      agentConfig: { docker: { socket: d.socket } },
      mountpoint: d.mountpoint,
      // dockerd treats 127.0.0.0/8 as insecure already
      trustRegistry: () => undefined,
      pull: (ref) => void d.docker(['pull', '--quiet', ref]),
      createContainer: (ref, name) => d.docker(['create', '--network', 'none', '--name', name, ref]).trim(),
      imageNames: () => lines(d.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).filter(noneless),
    }
  }
  const c = await startContainerd(t, opts)
  const names = () => lines(c.ctr(['images', 'ls', '-q']))
  return {
    kind,
    agentConfig: { runtime: { kind: 'containerd', socket: c.socket, namespace: c.namespace } },
    mountpoint: c.mountpoint,
    trustRegistry: (host) => c.setHosts(host, [host]),
    pull: (ref) => void c.ctr(['images', 'pull', '--plain-http', ref]),
    createContainer: (ref, name) => {
      c.ctr(['containers', 'create', ref, name])
      return name
    },
    imageNames: names,
    pin: (ref) => void c.ctr(['images', 'label', ref, 'io.cri-containerd.pinned=pinned']),
    pinnedNames: () =>
      lines(c.ctr(['images', 'ls']))
        .filter((l) => l.includes('io.cri-containerd.pinned=pinned'))
        .map((l) => l.split(/\s+/)[0]!),
  }
}

function lines(s: string): string[] {
  return s.trim().split('\n').filter(Boolean)
}

function noneless(s: string): boolean {
  return !s.includes('<none>')
}

// Test images of a chosen size and environment, made with `docker import` of a generated tarball.
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { execFileSync } from 'node:child_process'
import type { PrivateDockerd } from './dockerd.js'

export interface TestImageSpec {
  ref: string
  /** bytes of random (incompressible) content in the single layer */
  sizeBytes: number
  env?: Record<string, string>
  labels?: Record<string, string>
}

/** builds the image in the private daemon and returns its id (sha256:…) */
export function makeImage(dockerd: PrivateDockerd, spec: TestImageSpec): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-img-'))
  try {
    const root = join(dir, 'root')
    mkdirSync(join(root, 'data'), { recursive: true })
    // Random content so every image has its own layer and compression cannot shrink it.
    const chunk = 8 * 1024 * 1024
    for (let written = 0, n = 0; written < spec.sizeBytes; n++) {
      const size = Math.min(chunk, spec.sizeBytes - written)
      writeFileSync(join(root, 'data', `blob-${n}`), randomBytes(size))
      written += size
    }
    writeFileSync(join(root, 'data', 'ref'), spec.ref + '\n')
    const tar = join(dir, 'layer.tar')
    execFileSync('tar', ['-C', root, '-cf', tar, '.'])
    const changes: string[] = ['CMD ["/data/ref"]']
    for (const [k, v] of Object.entries(spec.env ?? {})) changes.push(`ENV ${k}=${JSON.stringify(v)}`)
    for (const [k, v] of Object.entries(spec.labels ?? {})) changes.push(`LABEL ${k}=${JSON.stringify(v)}`)
    const args = ['import']
    for (const c of changes) args.push('--change', c)
    args.push(tar, spec.ref)
    return dockerd.docker(args).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** tags `ref` for `registryHost`, pushes it, removes the extra tag; returns the pushed reference */
export function pushImage(dockerd: PrivateDockerd, ref: string, registryHost: string): string {
  const target = `${registryHost}/${ref.replace(/^[^/]+\.[^/]+\//, '')}`
  dockerd.docker(['tag', ref, target])
  dockerd.docker(['push', '--quiet', target])
  dockerd.docker(['rmi', target])
  return target
}

/** creates (but does not start) a container that uses the image, with no network */
export function createContainer(dockerd: PrivateDockerd, ref: string, name?: string): string {
  const args = ['create', '--network', 'none']
  if (name) args.push('--name', name)
  args.push(ref)
  return dockerd.docker(args).trim()
}

export function shell(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })
}

/**
 * A Node.js base image made without a registry: the node running the tests and the shared
 * libraries it loads, imported as one layer, with node on PATH at /usr/local/bin/node.
 */
export function makeNodeBaseImage(dockerd: PrivateDockerd, ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-base-'))
  try {
    const root = join(dir, 'root')
    const node = realpathSync(process.execPath)
    const libs = execFileSync('ldd', [node], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
      .filter((p): p is string => p !== undefined)
    for (const lib of libs) {
      mkdirSync(join(root, dirname(lib)), { recursive: true })
      copyFileSync(realpathSync(lib), join(root, lib))
    }
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true })
    copyFileSync(node, join(root, 'usr/local/bin/node'))
    chmodSync(join(root, 'usr/local/bin/node'), 0o755)
    mkdirSync(join(root, 'tmp'), { mode: 0o1777 })
    chmodSync(join(root, 'tmp'), 0o1777)
    const tar = join(dir, 'rootfs.tar')
    execFileSync('tar', ['-C', root, '-cf', tar, '.'])
    return dockerd.docker(['import', '--change', 'ENV PATH=/usr/local/bin:/usr/bin:/bin', tar, ref]).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// For prune tests against the private dockerd: images that can run a container (a real sleep
// binary and its libraries, plus incompressible filler), and the image facts of the daemon read
// straight from its API, with the first-seen and last-used times a test chooses.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { PrivateDockerd } from '../harness/dockerd.js'
import type { ImageFacts } from '../../src/core/snapshot.js'
import Dockerode from 'dockerode'

const MiB = 1024 * 1024

/** a binary and the shared libraries it loads, as ldd lists them */
function binaryFiles(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' })
  const libs = [...out.matchAll(/(\/\S+)/g)].map((m) => m[1])
  return [binary, ...new Set(libs)]
}

const sleepFiles = () => binaryFiles('/bin/sleep')

/**
 * An image whose container prints `text` to stdout with a real `cat` and exits: its json-file log
 * then holds exactly that text, line by line.
 */
export function makeLoggingImage(dockerd: PrivateDockerd, ref: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-log-'))
  try {
    const root = join(dir, 'root')
    for (const file of binaryFiles('/bin/cat')) {
      mkdirSync(join(root, dirname(file)), { recursive: true })
      copyFileSync(file, join(root, file))
    }
    mkdirSync(join(root, 'data'), { recursive: true })
    writeFileSync(join(root, 'data', 'log.txt'), text)
    const tar = join(dir, 'layer.tar')
    execFileSync('tar', ['-C', root, '-cf', tar, '.'])
    const entrypoint = '["/bin/cat", "/data/log.txt"]'
    return dockerd.docker(['import', '--change', `ENTRYPOINT ${entrypoint}`, tar, ref]).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** an image whose `sleep` runs: `docker run IMAGE 3600` stays up, `docker run IMAGE 0` exits */
export function makeRunnableImage(dockerd: PrivateDockerd, ref: string, fillerBytes = 4 * MiB): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-run-'))
  try {
    const root = join(dir, 'root')
    for (const file of sleepFiles()) {
      mkdirSync(join(root, dirname(file)), { recursive: true })
      copyFileSync(file, join(root, file))
    }
    mkdirSync(join(root, 'data'), { recursive: true })
    writeFileSync(join(root, 'data', 'filler'), randomBytes(fillerBytes))
    const tar = join(dir, 'layer.tar')
    execFileSync('tar', ['-C', root, '-cf', tar, '.'])
    return dockerd
      .docker(['import', '--change', 'ENTRYPOINT ["/bin/sleep"]', '--change', 'CMD ["3600"]', tar, ref])
      .trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** the private dockerd's API, unversioned: it answers in its own version */
export function dockerClient(dockerd: PrivateDockerd): Dockerode {
  return new Dockerode({ socketPath: dockerd.socket })
}

export interface Times {
  firstSeen: string
  lastUsed: string | null
}

/** Image facts from GET /images/json and /containers/json; times from `times` by tag or id, else `fallback`. */
export async function readImageFacts(
  docker: Dockerode,
  times: (image: { id: string; tags: string[] }) => Times,
): Promise<ImageFacts[]> {
  const [images, containers] = await Promise.all([docker.listImages(), docker.listContainers({ all: true })])
  return images.map((i) => {
    const tags = (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>')
    const digests = (i.RepoDigests ?? []).filter((d) => d !== '<none>@<none>')
    return {
      id: i.Id,
      repoTags: tags,
      repoDigests: digests,
      sizeBytes: i.Size,
      sharedSizeBytes: i.SharedSize ?? -1,
      createdAt: new Date(i.Created * 1000).toISOString(),
      containers: containers
        .filter((c) => c.ImageID === i.Id)
        .map((c) => ({ id: c.Id, name: c.Names[0] ?? '', state: c.State })),
      dangling: tags.length === 0,
      ...times({ id: i.Id, tags }),
      cudaEnv: null,
    }
  })
}

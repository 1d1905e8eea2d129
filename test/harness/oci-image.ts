// Test images of a chosen size and environment, written straight into a harness registry as OCI
// images (one uncompressed layer of random bytes, a config with the env), so any runtime can pull
// them: Docker and containerd alike, with no engine needed to build them.
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface OciImageSpec {
  /** repository and tag on the registry, `team/app:1` */
  repoTag: string
  /** bytes of random content in its only layer (incompressible) */
  sizeBytes: number
  env?: Record<string, string>
  /** a layer shared with other images made with the same `sharedLayer` (its bytes come first) */
  sharedLayer?: Buffer
}

export interface PushedImage {
  /** `host:port/team/app:1` */
  ref: string
  /** the config digest: the image id both runtimes report */
  id: string
  manifestDigest: string
  /** the layers' bytes as stored (uncompressed tar) */
  layerBytes: number[]
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** a layer tar holding `sizeBytes` of random data under `name` */
export function randomLayer(name: string, sizeBytes: number): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'gh-oci-'))
  try {
    mkdirSync(join(dir, 'root', 'data'), { recursive: true })
    writeFileSync(join(dir, 'root', 'data', name), randomBytes(sizeBytes))
    execFileSync('tar', ['-C', join(dir, 'root'), '--owner=0', '--group=0', '-cf', join(dir, 'l.tar'), 'data'])
    return readFileSync(join(dir, 'l.tar'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function putBlob(registryUrl: string, repo: string, blob: Buffer): Promise<string> {
  const digest = digestOf(blob)
  if ((await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).ok) return digest
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  if (start.status !== 202) throw new Error(`blob upload to ${repo}: ${start.status}`)
  const location = new URL(start.headers.get('location')!, registryUrl)
  location.searchParams.set('digest', digest)
  const put = await fetch(location, {
    method: 'PUT',
    body: new Uint8Array(blob),
    headers: { 'content-type': 'application/octet-stream' },
  })
  if (put.status !== 201) throw new Error(`blob ${digest} to ${repo}: ${put.status} ${await put.text()}`)
  return digest
}

export async function pushOciImage(registry: { url: string; host: string }, spec: OciImageSpec): Promise<PushedImage> {
  const [repo, tag] = spec.repoTag.split(':') as [string, string]
  const layers = [...(spec.sharedLayer ? [spec.sharedLayer] : []), randomLayer(`blob-${tag}`, spec.sizeBytes)]
  const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']
  for (const [k, v] of Object.entries(spec.env ?? {})) env.push(`${k}=${v}`)
  const config = Buffer.from(
    JSON.stringify({
      created: new Date().toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: { Env: env, Cmd: ['/data/none'] },
      rootfs: { type: 'layers', diff_ids: layers.map(digestOf) },
    }),
  )
  const layerDescs = []
  for (const layer of layers) {
    layerDescs.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: await putBlob(registry.url, repo, layer),
      size: layer.length,
    })
  }
  const configDigest = await putBlob(registry.url, repo, config)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layerDescs,
    }),
  )
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(manifest),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  })
  if (res.status !== 201) throw new Error(`manifest ${spec.repoTag}: ${res.status} ${await res.text()}`)
  return {
    ref: `${registry.host}/${spec.repoTag}`,
    id: configDigest,
    manifestDigest: digestOf(manifest),
    layerBytes: layers.map((l) => l.length),
  }
}

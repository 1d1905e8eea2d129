// What the agent learns of an image from its registry without pulling it.

export interface RemoteImage {
  /** the reference as asked for, e.g. nvcr.io/nvidia/pytorch:24.01-py3 */
  ref: string
  /** registry host, e.g. registry-1.docker.io, 127.0.0.1:5000 */
  registry: string
  repository: string
  /** manifest digest for this platform (sha256:…) */
  digest: string
  /** the image config's Env, as "KEY=value" strings */
  env: string[]
  labels: Record<string, string>
  /** sum of the compressed layer sizes in the manifest: what a pull downloads */
  compressedBytes: number
  /** the digest the tag points at when that is a manifest list or OCI index (what Docker records in RepoDigests) */
  indexDigest?: string
  /** the image config's digest: the image ID in dockerd's own image store */
  configDigest?: string
  /** the manifest's layers (compressed digest and size), for progress per layer */
  layers?: { digest: string; sizeBytes: number }[]
}

/** Reads image facts from a registry (a mirror first when configured); throws with a clear reason. */
export interface RemoteImageSource {
  inspectRemote(ref: string): Promise<RemoteImage>
}

// Content digests (OCI image-spec "Digests"): what a manifest or blob is named by is the hash of
// its exact bytes, so whatever a registry or mirror sends is checked against the name it was asked
// for. Only the registered algorithms are accepted: a digest that cannot be checked is not one.
import { createHash } from 'node:crypto'

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

/** a digest this client can check (also what may go into a request path) */
export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST.test(value)
}

/** the digest of `bytes` with `algorithm` (sha256 unless told), as sha256:<hex> */
export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}

/** whether `bytes` hash to `digest` with the digest's own algorithm */
export function hashesTo(bytes: Uint8Array, digest: string): boolean {
  if (!isDigest(digest)) return false
  const algorithm = digest.startsWith('sha512:') ? 'sha512' : 'sha256'
  return digestOf(bytes, algorithm) === digest
}

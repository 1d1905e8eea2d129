// How much of each registry answer is read. A registry or mirror is not trusted with this host's
// memory: each body is read with its cap (src/bounded-body.ts) and refused past it, with an error
// naming the registry, so a hostile mirror costs a failed look-up, never the agent.

/**
 * A manifest or an index (manifest list): distribution refuses to store a larger one
 * (maxManifestBodySize in registry/handlers/manifests.go, 4 MiB), so no registry built on it serves
 * one; containers/image (podman, skopeo) reads manifests with the same cap.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * An image config: Env, Labels, the layers' diff ids and history. Even images of hundreds of
 * layers stay well under 100 KiB; 1 MiB leaves room for long histories and label sets, and is all
 * a mirror can make this host hold for the CUDA facts it reads from there (Env and Labels).
 */
export const MAX_CONFIG_BYTES = 1024 * 1024

/**
 * A token server's answer: a token (a JWT, a few KiB even with many scopes), its lifetime and
 * perhaps a refresh token; containers/image caps it at the same 1 MiB.
 */
export const MAX_TOKEN_ANSWER_BYTES = 1024 * 1024

/**
 * The body of an error answer (404, 401, 5xx): only its first error's code and message are kept, for
 * one log line. A longer body is cut, never refused: the status already says what happened.
 */
export const MAX_ERROR_BODY_BYTES = 4 * 1024

/** a cap as people read it: 4 MiB, 1 MiB, 4 KiB */
export function formatCap(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} bytes`
}

// Typed registry failures, so callers can tell "no such image" from "no access" from "no network".

export type RegistryErrorKind = 'not_found' | 'unauthorized' | 'unreachable' | 'unsupported' | 'invalid'

export class RegistryError extends Error {
  constructor(
    readonly kind: RegistryErrorKind,
    readonly registry: string,
    message: string,
  ) {
    super(message)
    this.name = 'RegistryError'
  }
}

/** Errors fetch throws for a transport failure: refused, reset, DNS, TLS, timeout. */
export function isTransportError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return (
    err.name === 'TypeError' ||
    err.name === 'AbortError' ||
    err.name === 'TimeoutError' ||
    err.name === 'ConnectTimeoutError'
  )
}

/** the innermost cause of a transport failure, e.g. "connect ECONNREFUSED 127.0.0.1:5000" */
export function transportReason(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; code?: string } | undefined
  let reason = e?.message ?? String(err)
  for (let depth = 0; e?.cause && depth < 5; depth++) {
    e = e.cause as typeof e
    if (e?.message) reason = e.message
  }
  return reason
}

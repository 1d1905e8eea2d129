// Reading what a registry or token server answered: each body with its cap (./limits.ts), and
// errors that name who sent what; error bodies cut to one printable line.
import { BodyTooLargeError, readBody, readBodyPrefix } from '../bounded-body.js'
import { RegistryError, transportReason } from './errors.js'
import { MAX_ERROR_BODY_BYTES, formatCap } from './limits.js'

/**
 * `res`'s body from `source` (a registry, a token server), at most `limit` bytes: past it, or
 * should the body break off, a RegistryError that says who sent what.
 */
export async function readAnswer(
  res: Response,
  limit: number,
  source: string,
  domain: string,
  what: string,
): Promise<Buffer> {
  try {
    return await readBody(res, limit)
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      const size = err.declared ? `${err.bytes} bytes` : `cut off at ${err.bytes} bytes`
      throw new RegistryError('invalid', domain, `${source} sent ${what} over ${formatCap(limit)} (${size})`)
    }
    throw new RegistryError('unreachable', domain, `${source}: ${what} broke off: ${transportReason(err)}`)
  }
}

export function mismatch(
  domain: string,
  what: string,
  got: string,
  wanted: string,
  named = 'the digest asked for',
): RegistryError {
  return new RegistryError(
    'invalid',
    domain,
    `registry ${domain} sent ${what} whose bytes hash to ${got}, not ${named} ${wanted}`,
  )
}

export function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/**
 * The first error's code and message, as distribution writes them, from at most the first 4 KiB of
 * the body (the rest is never read); one printable line of 200 characters at most, since it goes
 * into logs and results. Anything else: the status.
 */
export async function registryErrorText(res: Response): Promise<string> {
  const { bytes, cut } = await readBodyPrefix(res, MAX_ERROR_BODY_BYTES).catch(() => ({
    bytes: Buffer.alloc(0),
    cut: true,
  }))
  if (cut) return `HTTP ${res.status}`
  const errors = parseJsonObject(bytes).errors
  const first = (Array.isArray(errors) ? errors[0] : undefined) as { code?: unknown; message?: unknown } | undefined
  const parts = [first?.code, first?.message].filter((p): p is string => typeof p === 'string' && p !== '')
  const text = parts
    .join(': ')
    .replace(/[^\x20-\x7e]/g, ' ')
    .slice(0, 200)
  return text || `HTTP ${res.status}`
}

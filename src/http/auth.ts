import { timingSafeEqual, createHash } from 'node:crypto'

export type AuthVerdict = 'ok' | 'missing' | 'wrong' | 'disabled'

/**
 * Checks `Authorization: Bearer <token>` against the expected token in constant time.
 * With no token configured every write is refused ('disabled'): an agent without a token file
 * must not take orders from anyone on the network.
 */
export function checkBearer(header: string | undefined, expected: string | null): AuthVerdict {
  if (expected === null) return 'disabled'
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  if (!match) return 'missing'
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(match[1]).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b) ? 'ok' : 'wrong'
}

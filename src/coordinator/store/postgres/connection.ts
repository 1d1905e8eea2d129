// How the PostgreSQL store reaches its database: the pool, one client's transaction, the settings
// every connection shares, and the URL as messages may show it.
import pg from 'pg'
import type { Logger } from 'pino'
import type { Clock } from '../../../core/clock.js'

const CONNECT_TIMEOUT_MS = 10_000

export type Queryable = pg.Pool | pg.PoolClient

export interface ConnectionOptions {
  url: string
  password?: string | null
}

/** what the parts of the store share: the pool, this replica's id and the clock */
export interface PgContext {
  readonly pool: pg.Pool
  readonly replicaId: string
  readonly log: Logger
  readonly now: Clock
  stamp(): string
  transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T>
}

export function clientConfig(opts: ConnectionOptions, applicationName: string): pg.ClientConfig {
  return {
    connectionString: opts.url,
    ...(opts.password ? { password: opts.password } : {}),
    // A database that does not answer fails the call, and the start, instead of hanging it.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: applicationName,
  }
}

export function openPool(opts: ConnectionOptions & { poolSize: number }, log: Logger): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(opts, 'gpuhost-coordinator'), max: opts.poolSize })
  // An idle client that loses its server emits here; the pool drops it and the next query opens another.
  pool.on('error', (err) => log.warn({ err: err.message }, 'a PostgreSQL connection failed'))
  return pool
}

export async function inTransaction<T>(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let value: T
  try {
    await client.query('BEGIN')
    value = await work(client)
    await client.query('COMMIT')
  } catch (err) {
    // A client whose ROLLBACK failed is in an unknown state: the pool drops it instead of reusing it.
    const broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: Error) => e,
    )
    client.release(broken)
    throw err
  }
  client.release()
  return value
}

/** the URL without its password, for messages and --print-config */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    // pg also reads a password from the query string
    for (const key of ['password', 'sslpassword']) if (u.searchParams.has(key)) u.searchParams.set(key, '***')
    return u.toString()
  } catch {
    return 'the configured store.url'
  }
}

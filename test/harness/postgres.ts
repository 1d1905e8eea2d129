// A private PostgreSQL server for tests and benches: Debian's postgresql binaries, initdb into a
// temporary directory as an unprivileged user (initdb refuses root), the server on a free loopback
// port with its socket in that directory. Stopped (immediate) and removed on teardown, on exit and
// on SIGINT/SIGTERM, whatever the test did.
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { onCleanup } from './cleanup.js'
import { freePort } from './ports.js'

/** where Debian's postgresql package puts its server binaries */
export const POSTGRES_BIN = process.env.GPUHOST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface RunningPostgres {
  port: number
  /** postgres://postgres@127.0.0.1:PORT/NAME */
  url(database: string): string
  /** a new empty database; returns its URL */
  createDatabase(name: string): Promise<string>
  /** the server's log so far */
  logs(): string
}

/** null when the server binaries are there, else why not */
export function postgresMissing(): string | null {
  return existsSync(join(POSTGRES_BIN, 'pg_ctl'))
    ? null
    : `no PostgreSQL server at ${POSTGRES_BIN} (apt install postgresql)`
}

/** runs a server binary as `user` (when root) or as ourselves */
function runAs(user: string | null, bin: string, args: string[]): void {
  const cmd = join(POSTGRES_BIN, bin)
  const r = user
    ? spawnSync('runuser', ['-u', user, '--', cmd, ...args], { encoding: 'utf8', timeout: 120_000 })
    : spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0)
    throw new Error(`${bin} ${args.join(' ')} exited with ${r.status}: ${r.stderr || r.error?.message}`)
}

/**
 * Starts a server. `durable: false` turns fsync off (tests: nothing here survives the process);
 * benches keep the default so that their figures include what a real commit costs.
 */
export async function startPostgres(t: Teardown, opts: { durable?: boolean } = {}): Promise<RunningPostgres> {
  const missing = postgresMissing()
  if (missing) throw new Error(missing)
  const root = mkdtempSync(join(tmpdir(), 'gh-pg-'))
  const removeRoot = () => rmSync(root, { recursive: true, force: true })
  const asRoot = process.getuid?.() === 0
  const user = asRoot ? 'nobody' : null
  const data = join(root, 'data')
  const sockets = join(root, 'run')
  try {
    chmodSync(root, 0o755)
    mkdirSync(data, { mode: 0o700 })
    mkdirSync(sockets, { mode: 0o755 })
    if (asRoot) {
      const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim())
      const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim())
      chownSync(data, uid, gid)
      chownSync(sockets, uid, gid)
    }
    runAs(user, 'initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'])
  } catch (err) {
    removeRoot()
    throw err
  }
  const port = await freePort()
  const log = join(data, 'server.log')
  const settings = [
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockets}`,
    '-c max_connections=200 -c shared_buffers=128MB',
    opts.durable === false ? '-c fsync=off -c synchronous_commit=off -c full_page_writes=off' : '',
  ].join(' ')
  const stop = () => {
    try {
      runAs(user, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    } catch {
      /* not running */
    }
    removeRoot()
  }
  const undo = onCleanup(`postgres ${port}`, stop)
  t.teardown(() => undo())
  runAs(user, 'pg_ctl', ['-D', data, '-l', log, '-o', settings, '-w', '-t', '60', 'start'])
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
  return {
    port,
    url,
    logs: () => {
      try {
        return readFileSync(log, 'utf8')
      } catch {
        return ''
      }
    },
    createDatabase: async (name) => {
      const client = new pg.Client({ connectionString: url('postgres') })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
      } finally {
        await client.end()
      }
      return url(name)
    },
  }
}

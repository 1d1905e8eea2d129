// The PostgreSQL fleet schema as ordered migrations; gpuhost_schema records those applied. Append,
// never edit: a replica that finds a version beyond this list refuses to start. Times the API shows
// are ISO 8601 text, as the SQLite store keeps them (one clock, the same answers from both stores);
// JSON documents are text too, so what an agent sent is returned as it was, whatever its content.
import type pg from 'pg'
import type { Logger } from 'pino'
import { checkSchemaVersion } from '../fleet-store.js'

/** pg_advisory_lock key held while migrating, so two replicas starting at once migrate once */
const MIGRATION_LOCK = 0x67707568 // "gpuh"

export const POSTGRES_MIGRATIONS: string[] = [
  `CREATE TABLE hosts (
     host_id text PRIMARY KEY,
     connected boolean NOT NULL DEFAULT false,
     -- the replica holding the host's connection; a replica that stops beating loses its hosts
     replica text,
     last_seen text, version text, actions text, gpu text, disk text, images text, local_images text,
     last_prune text, last_prune_at timestamptz, last_prewarm text, last_prewarm_at timestamptz,
     labels text
   );
   CREATE INDEX hosts_replica ON hosts (replica) WHERE replica IS NOT NULL;
   CREATE TABLE events (
     seq bigserial PRIMARY KEY,
     -- the agent's id for the event: unique, so a resend through any replica is stored once
     id text NOT NULL UNIQUE,
     host_id text NOT NULL, type text NOT NULL, ts text NOT NULL, data text NOT NULL, received_at text NOT NULL
   );
   CREATE INDEX events_host_type ON events (host_id, type, seq);
   CREATE INDEX events_type ON events (type, seq);
   CREATE TABLE commands (
     seq bigserial NOT NULL,
     command_id text PRIMARY KEY,
     host_id text NOT NULL, action text NOT NULL, args text NOT NULL, status text NOT NULL,
     result text, error text, created_at text NOT NULL, updated_at text NOT NULL
   );
   CREATE INDEX commands_seq ON commands (seq);
   CREATE INDEX commands_host_status ON commands (host_id, status, seq);
   CREATE INDEX commands_open ON commands (created_at) WHERE status IN ('pending', 'running');
   CREATE TABLE replicas (id text PRIMARY KEY, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL);`,
  `CREATE TABLE rollouts (
     seq bigserial NOT NULL,
     id text PRIMARY KEY, state text NOT NULL, spec text NOT NULL,
     created_at text NOT NULL, updated_at text NOT NULL, finished_at text
   );
   CREATE INDEX rollouts_state ON rollouts (state);
   CREATE TABLE rollout_hosts (
     rollout_id text NOT NULL, host_id text NOT NULL, state text NOT NULL, reason text, command_id text,
     images text NOT NULL DEFAULT '[]', bytes_pulled bigint NOT NULL DEFAULT 0, started_at text, finished_at text,
     PRIMARY KEY (rollout_id, host_id)
   );
   CREATE INDEX rollout_hosts_state ON rollout_hosts (state);
   -- work one replica at a time does (driving rollouts): held until expires_at, renewed by its holder
   CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL);`,
  // what a host serving peers advertised in its hello
  `ALTER TABLE hosts ADD COLUMN peers text;`,
  // the host facts of its hello: OS, CPU, memory, system, block devices
  `ALTER TABLE hosts ADD COLUMN host text;`,
]

/** Brings the schema up to this build's version; refuses (StoreOpenError) one newer than it knows. */
export async function migrate(pool: pg.Pool, where: string, log: Logger): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE TABLE IF NOT EXISTS gpuhost_schema (
      version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::int AS v FROM gpuhost_schema')
    const found = rows[0].v
    checkSchemaVersion(found, POSTGRES_MIGRATIONS.length, where)
    for (let v = found; v < POSTGRES_MIGRATIONS.length; v++) {
      await client.query('BEGIN')
      try {
        await client.query(POSTGRES_MIGRATIONS[v])
        await client.query('INSERT INTO gpuhost_schema (version) VALUES ($1)', [v + 1])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw err
      }
      log.info({ version: v + 1 }, 'fleet database schema migrated')
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {})
    client.release()
  }
}

// The SQLite fleet schema and its migrations, counted by PRAGMA user_version.
import type Database from 'better-sqlite3'
import { checkSchemaVersion } from '../fleet-store.js'
import { ROLLOUT_SCHEMA } from './rollout-tables.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hosts (
  hostId TEXT PRIMARY KEY, connected INTEGER NOT NULL DEFAULT 0, lastSeen TEXT, version TEXT,
  actions TEXT, gpu TEXT, disk TEXT, images TEXT, localImages TEXT, lastPrune TEXT, lastPrewarm TEXT, labels TEXT
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, hostId TEXT NOT NULL,
  type TEXT NOT NULL, ts TEXT NOT NULL, data TEXT NOT NULL, receivedAt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_host_type ON events (hostId, type, seq);
CREATE INDEX IF NOT EXISTS events_type ON events (type, seq);
CREATE TABLE IF NOT EXISTS commands (
  commandId TEXT PRIMARY KEY, hostId TEXT NOT NULL, action TEXT NOT NULL, args TEXT NOT NULL,
  status TEXT NOT NULL, result TEXT, error TEXT, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_host_status ON commands (hostId, status, createdAt);
`

/**
 * The schema's migrations in order; PRAGMA user_version counts those applied. Append, never edit:
 * a database made by a newer coordinator is refused by an older one. The first is idempotent, as
 * databases from before versioning have user_version 0 and some or all of its tables.
 */
const MIGRATIONS: ((db: Database.Database) => void)[] = [
  (db) => {
    db.exec(SCHEMA)
    // A database made before hosts had labels gains the column.
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'labels')) db.exec('ALTER TABLE hosts ADD COLUMN labels TEXT')
  },
  // Rollouts; IF NOT EXISTS, as some databases gained these tables before versioning.
  (db) => db.exec(ROLLOUT_SCHEMA),
  // What a host serving peers advertised in its hello. Checked first: a database whose version was
  // lost (user_version 0) runs every migration again.
  (db) => {
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'peers')) db.exec('ALTER TABLE hosts ADD COLUMN peers TEXT')
  },
  // The host facts of its hello (OS, CPU, memory, system, block devices); checked first, as above.
  (db) => {
    const columns = db.prepare('PRAGMA table_info(hosts)').all() as { name: string }[]
    if (!columns.some((c) => c.name === 'host')) db.exec('ALTER TABLE hosts ADD COLUMN host TEXT')
  },
]

/** the schema version this build brings a database to */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length

/** Brings the schema up to this build's version; throws (the database left as it is) when it is newer. */
export function migrate(db: Database.Database, file: string): void {
  const found = db.pragma('user_version', { simple: true }) as number
  checkSchemaVersion(found, MIGRATIONS.length, file)
  if (found === MIGRATIONS.length) return
  db.transaction(() => {
    for (let v = found; v < MIGRATIONS.length; v++) MIGRATIONS[v](db)
    db.pragma(`user_version = ${MIGRATIONS.length}`)
  })()
}

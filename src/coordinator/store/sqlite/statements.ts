// The fleet's prepared SQLite statements, compiled once when the database opens.
import type Database from 'better-sqlite3'

/** true when the stored job record `col` is not newer than `param` (both JSON with an ISO `ts`) */
const NEWER = (col: string, param: string): string =>
  `(${col} IS NULL OR julianday(json_extract(${col}, '$.ts')) IS NULL
    OR julianday(json_extract(${col}, '$.ts'))
      <= coalesce(julianday(json_extract(${param}, '$.ts')), julianday('now')))`

export function prepareStatements(db: Database.Database): Record<string, Database.Statement> {
  const p = (sql: string) => db.prepare(sql)
  return {
    hello: p(`INSERT INTO hosts
        (hostId, connected, lastSeen, version, actions, gpu, disk, images, labels, peers, host)
      VALUES (@hostId, 1, @lastSeen, @version, @actions, @gpu, @disk, @images, @labels, @peers, @host)
      ON CONFLICT (hostId) DO UPDATE SET connected = 1, lastSeen = @lastSeen, version = @version, actions = @actions,
        gpu = coalesce(@gpu, gpu), disk = coalesce(@disk, disk), images = coalesce(@images, images),
        labels = @labels, peers = @peers, host = @host`),
    snapshot: p(`UPDATE hosts SET lastSeen = @lastSeen, gpu = @gpu, disk = @disk, images = @images,
      localImages = coalesce(@localImages, localImages), labels = coalesce(@labels, labels),
      host = coalesce(@host, host),
      lastPrune = CASE WHEN @lastPrune IS NOT NULL AND ${NEWER('lastPrune', '@lastPrune')}
        THEN @lastPrune ELSE lastPrune END,
      lastPrewarm = CASE WHEN @lastPrewarm IS NOT NULL AND ${NEWER('lastPrewarm', '@lastPrewarm')}
        THEN @lastPrewarm ELSE lastPrewarm END
      WHERE hostId = @hostId`),
    seen: p('UPDATE hosts SET lastSeen = ? WHERE hostId = ?'),
    disconnected: p('UPDATE hosts SET connected = 0, lastSeen = ? WHERE hostId = ?'),
    // A resent event may arrive after a newer one: keep the newest by the event's own time.
    lastPrune: p(`UPDATE hosts SET lastPrune = @value WHERE hostId = @hostId AND ${NEWER('lastPrune', '@value')}`),
    lastPrewarm: p(`UPDATE hosts SET lastPrewarm = @value
      WHERE hostId = @hostId AND ${NEWER('lastPrewarm', '@value')}`),
    host: p('SELECT * FROM hosts WHERE hostId = ?'),
    hosts: p('SELECT * FROM hosts ORDER BY hostId'),
    insertEvent: p('INSERT OR IGNORE INTO events (id, hostId, type, ts, data, receivedAt) VALUES (?, ?, ?, ?, ?, ?)'),
    eventCount: p('SELECT count(*) AS n FROM events'),
    hostCount: p('SELECT count(*) AS n FROM hosts'),
    hostsWithPending: p("SELECT DISTINCT hostId FROM commands WHERE status IN ('pending', 'running')"),
    insertCommand: p(`INSERT INTO commands (commandId, hostId, action, args, status, createdAt, updatedAt)
      VALUES (?, ?, ?, ?, 'pending', ?, ?)`),
    command: p('SELECT * FROM commands WHERE commandId = ?'),
    // 'running' ones too: a command sent on a connection that then dropped may never have arrived;
    // the agent runs each command id once and answers a repeat with its stored result.
    pendingFor: p(`SELECT * FROM commands WHERE hostId = ? AND status IN ('pending', 'running')
      ORDER BY createdAt, rowid`),
    setStatus: p(
      "UPDATE commands SET status = ?, updatedAt = ? WHERE commandId = ? AND status IN ('pending', 'running')",
    ),
    finish: p(
      // A result for a command already finished (timed out, or answered before) changes nothing:
      // what a rollout or a caller already read stays true.
      `UPDATE commands SET
         status = CASE WHEN status IN ('pending', 'running') THEN ? ELSE status END,
         result = CASE WHEN status IN ('pending', 'running') THEN ? ELSE result END,
         error = CASE WHEN status IN ('pending', 'running') THEN ? ELSE error END,
         updatedAt = CASE WHEN status IN ('pending', 'running') THEN ? ELSE updatedAt END
       WHERE commandId = ? AND hostId = ?`,
    ),
    expire: p(
      `UPDATE commands SET status = 'failed', error = ?, updatedAt = ?
       WHERE status IN ('pending', 'running') AND createdAt < ?`,
    ),
    commandCounts: p('SELECT action, status, count(*) AS n FROM commands GROUP BY action, status'),
  }
}

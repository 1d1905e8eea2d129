// The coordinator's commands this agent has run, durably and bounded: the coordinator delivers a
// command at least once (again after a dropped link or its own restart), and the agent runs each
// command id once, answering a repeat with the result it stored.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

/** how many command ids are remembered; older ones are forgotten first */
export const EXECUTED_COMMANDS_KEPT = 1000

export type PriorRun = { state: 'unknown' } | { state: 'started' } | { state: 'finished'; resultMessage: string }

export class ExecutedCommands {
  private readonly db: Database.Database
  private readonly stmt: Record<'get' | 'begin' | 'finish' | 'trim', Database.Statement>

  constructor(
    readonly file: string,
    private readonly kept = EXECUTED_COMMANDS_KEPT,
  ) {
    mkdirSync(dirname(file), { recursive: true })
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.exec(`CREATE TABLE IF NOT EXISTS executed_commands (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      commandId TEXT NOT NULL UNIQUE,
      resultMessage TEXT
    )`)
    this.stmt = {
      get: this.db.prepare('SELECT resultMessage FROM executed_commands WHERE commandId = ?'),
      begin: this.db.prepare('INSERT OR IGNORE INTO executed_commands (commandId) VALUES (?)'),
      finish: this.db.prepare('UPDATE executed_commands SET resultMessage = ? WHERE commandId = ?'),
      trim: this.db.prepare('DELETE FROM executed_commands WHERE seq <= (SELECT max(seq) FROM executed_commands) - ?'),
    }
  }

  /** What became of an earlier delivery of this command id. */
  prior(commandId: string): PriorRun {
    const row = this.stmt.get.get(commandId) as { resultMessage: string | null } | undefined
    if (!row) return { state: 'unknown' }
    return row.resultMessage === null ? { state: 'started' } : { state: 'finished', resultMessage: row.resultMessage }
  }

  /** Records, before running it, that the command started (committed before this returns). */
  begin(commandId: string): void {
    this.db.transaction(() => {
      this.stmt.begin.run(commandId)
      this.stmt.trim.run(this.kept)
    })()
  }

  /** Records the result message sent for the command. */
  finish(commandId: string, resultMessage: string): void {
    this.stmt.finish.run(resultMessage, commandId)
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

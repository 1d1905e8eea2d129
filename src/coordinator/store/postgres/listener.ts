// One client LISTENs for new commands, whichever replica stored them; when it drops, it reconnects
// and catches up on what it missed.
import pg from 'pg'
import type { Logger } from 'pino'
import { backoffDelay } from '../../../backoff.js'
import { clientConfig, type ConnectionOptions } from './connection.js'

/** the NOTIFY channel a new command's host id is sent on */
export const COMMANDS_CHANNEL = 'gpuhost_commands'

export class CommandListener {
  private client: pg.Client | null = null
  private attempt = 0
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly log: Logger,
    /** a command for this host was created */
    private readonly heard: (hostId: string) => void,
    /** the hosts with commands without a result, heard of again after a reconnect */
    private readonly catchUp: () => Promise<string[]>,
  ) {}

  async listen(): Promise<void> {
    const client = new pg.Client(clientConfig(this.opts, 'gpuhost-coordinator-listen'))
    client.on('notification', (n) => {
      if (n.channel === COMMANDS_CHANNEL && n.payload) this.heard(n.payload)
    })
    client.on('error', (err) => {
      this.log.warn({ err: err.message }, 'the command listener lost PostgreSQL; reconnecting')
      this.relisten(client)
    })
    client.on('end', () => this.relisten(client))
    await client.connect()
    await client.query(`LISTEN ${COMMANDS_CHANNEL}`)
    this.client = client
    this.attempt = 0
  }

  private relisten(client: pg.Client): void {
    if (this.closed || this.client !== client) return
    this.client = null
    client.end().catch(() => {})
    const delay = backoffDelay(this.attempt++, { baseMs: 500, maxMs: 10_000 })
    this.timer = setTimeout(() => {
      this.listen()
        .then(() => this.catchUp())
        .then((hosts) => hosts.forEach((h) => this.heard(h)))
        .catch((err: Error) => {
          this.log.warn({ err: err.message }, 'cannot listen for commands yet')
          this.attempt++
          if (!this.closed && !this.client) this.relisten(client)
        })
    }, delay)
    this.timer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    const client = this.client
    this.client = null
    await client?.end().catch(() => {})
  }
}

// A raw agent connection to a real coordinator: frames written by hand, everything it receives kept,
// and how it was closed (or the HTTP status of a refused upgrade).
import WebSocket from 'ws'
import type { RunningCoordinator } from '../harness/coordinator.js'

/** one agent frame as the protocol spells it */
export const frame = (hostId: string, type: string, body: object, id = `m-${Math.random()}`) =>
  JSON.stringify({ v: 1, id, ts: new Date().toISOString(), hostId, type, ...body })

export interface RawAgent {
  ws: WebSocket
  /** every message received, parsed */
  inbox: any[]
  /** 101 when the upgrade was accepted, the refusal's HTTP status, 0 on a connection error */
  opened: number
  closed(): { code: number; reason: string } | null
}

/** `autoPong: false` makes a connection that stays open but answers no ping (a frozen agent). */
export async function rawAgent(
  coord: Pick<RunningCoordinator, 'agentsUrl'>,
  token: string,
  opts: { autoPong?: boolean } = {},
): Promise<RawAgent> {
  const ws = new WebSocket(coord.agentsUrl, {
    headers: { authorization: `Bearer ${token}` },
    autoPong: opts.autoPong ?? true,
  })
  const inbox: any[] = []
  let closed: { code: number; reason: string } | null = null
  ws.on('message', (d) => inbox.push(JSON.parse(String(d))))
  ws.on('close', (code, reason) => {
    closed = { code, reason: String(reason) }
  })
  ws.on('error', () => {})
  const opened = await new Promise<number>((resolve) => {
    ws.once('open', () => resolve(101))
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.once('error', () => resolve(0))
  })
  return { ws, inbox, opened, closed: () => closed }
}

/** whether `agent` received an ack naming `id` */
export const acked = (agent: RawAgent, id: string): boolean =>
  agent.inbox.some((m) => m.type === 'ack' && m.ids.includes(id))

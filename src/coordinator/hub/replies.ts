// What the hub answers with outside a session's frames: the coordinator's sender id, WebSocket close
// reasons, and the HTTP refusal of an upgrade it does not accept.
import type { Duplex } from 'node:stream'

export const COORDINATOR_ID = 'coordinator'

/** A WebSocket close reason is at most 123 bytes of UTF-8: cut whole characters off the end. */
export function closeReason(text: string): string {
  let reason = text
  while (Buffer.byteLength(reason) > 123) reason = Array.from(reason).slice(0, -1).join('')
  return reason
}

export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  const body = JSON.stringify({ error: text }) + '\n'
  const head = [
    `HTTP/1.1 ${status} ${text}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ]
  socket.end(head.join('\r\n') + '\r\n\r\n' + body)
  setTimeout(() => socket.destroy(), 1000).unref()
}

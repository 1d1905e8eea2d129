// A logger for executor tests that keeps every audit line (`audit` set) it is given, in order.
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'

export function auditLog(): { log: Logger; audit: Record<string, unknown>[] } {
  const audit: Record<string, unknown>[] = []
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _, done) {
        const line = JSON.parse(String(chunk))
        if (line.audit) audit.push(line)
        done()
      },
    }),
  )
  return { log, audit }
}

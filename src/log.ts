// Structured JSON logs for journald: stdout for the daemon, stderr when stdout carries --json output.
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(opts: { level?: string; toStderr?: boolean; name?: string } = {}): Logger {
  const level = process.env.GPUHOST_LOG_LEVEL ?? opts.level ?? 'info'
  return pino(
    { name: opts.name ?? 'gpuhost', level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: opts.toStderr ? 2 : 1, sync: true }),
  )
}

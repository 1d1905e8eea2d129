// Running a long-lived service in the foreground, the same way for the agent and the coordinator:
// signals are handled before start() so SIGTERM at any phase stops what started and exits 0.
import { stringify } from 'yaml'
import type { Logger } from 'pino'

export interface Service {
  start(): Promise<void>
  stop(): Promise<void>
}

/** Stop limit: a component that will not stop must not keep a service manager waiting. */
const STOP_LIMIT_MS = 4000

export async function runUntilSignal(
  service: Service,
  log: Logger,
  what: string,
  startedFields: object,
): Promise<number> {
  let stopping = false
  const done = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      stopping = true
      log.info({ signal }, 'stopping')
      setTimeout(() => {
        log.error(`stop took longer than ${STOP_LIMIT_MS / 1000} s; exiting`)
        process.exit(1)
      }, STOP_LIMIT_MS).unref()
      service.stop().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    // `on`, not `once`: a second signal is ours to answer (exit 1 at once), and a library that hooks
    // signals (proper-lockfile's signal-exit) re-raises a signal it sees no other listener for,
    // which would end the process by that signal in the middle of a clean stop.
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
  try {
    await service.start()
    log.info(startedFields, `${what} started`)
  } catch (err) {
    log.fatal({ err: (err as Error).message }, `${what} failed to start`)
    await service.stop()
    return 1
  }
  const code = await done
  log.info('stopped')
  return code
}

export function printConfig(config: object, json: boolean | undefined): number {
  process.stdout.write(json ? JSON.stringify(config, null, 2) + '\n' : stringify(config))
  return 0
}

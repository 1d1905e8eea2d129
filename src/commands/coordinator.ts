// gpuhost coordinator: the reference coordinator in the foreground until SIGTERM/SIGINT.
import { stringify } from 'yaml'
import { loadCoordinatorConfig } from '../config.js'
import { Coordinator } from '../coordinator/server.js'
import { createLogger } from '../log.js'
import { sdNotify } from '../sd-notify.js'
import type { GlobalOptions } from '../cli.js'

export async function run(opts: { printConfig?: boolean }, globals: GlobalOptions): Promise<number> {
  const config = loadCoordinatorConfig(globals.config)
  if (opts.printConfig) {
    process.stdout.write(globals.json ? JSON.stringify(config, null, 2) + '\n' : stringify(config))
    return 0
  }
  const log = createLogger({ level: config.log.level, name: 'gpuhost-coordinator' })
  const coordinator = new Coordinator(config, log)
  let stopping = false
  const done = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      stopping = true
      log.info({ signal }, 'stopping')
      sdNotify('STOPPING=1', log)
      setTimeout(() => { log.error('stop took longer than 4 s; exiting'); process.exit(1) }, 4000).unref()
      coordinator.stop().then(() => resolve(0), () => resolve(1))
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  try {
    await coordinator.start()
    sdNotify('READY=1', log)
    log.info({ listen: config.listen, dataDir: config.dataDir }, 'coordinator started')
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'coordinator failed to start')
    await coordinator.stop()
    return 1
  }
  const code = await done
  log.info('stopped')
  return code
}

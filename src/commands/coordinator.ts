// gpuhost coordinator: the reference coordinator in the foreground until SIGTERM/SIGINT.
import { loadCoordinatorConfig } from '../config.js'
import { Coordinator } from '../coordinator/server.js'
import { redact } from '../coordinator/store/postgres/connection.js'
import { createLogger } from '../log.js'
import { sdNotify } from '../agent/sd-notify.js'
import type { GlobalOptions } from './options.js'
import { printConfig, runUntilSignal } from './daemon.js'

export async function run(opts: { printConfig?: boolean }, globals: GlobalOptions): Promise<number> {
  const config = loadCoordinatorConfig(globals.config)
  if (opts.printConfig) {
    // A password in store.url is not printed.
    const url = config.store.url === null ? null : redact(config.store.url)
    return printConfig({ ...config, store: { ...config.store, url } }, globals.json)
  }
  const log = createLogger({ level: config.log.level, name: 'gpuhost-coordinator' })
  const coordinator = new Coordinator(config, log)
  const service = {
    start: async () => {
      await coordinator.start()
      sdNotify('READY=1', log)
    },
    stop: async () => {
      sdNotify('STOPPING=1', log)
      await coordinator.stop()
    },
  }
  return runUntilSignal(service, log, 'coordinator', { listen: config.listen, dataDir: config.dataDir })
}

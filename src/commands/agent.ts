// gpuhost agent: the daemon. Signals are handled from the first line, so SIGTERM at any phase of
// start-up stops what has started and exits 0.
import { stringify } from 'yaml'
import { Agent, type Feature } from '../agent.js'
import { loadAgentConfig } from '../config.js'
import { INVENTORY_COLLECTORS, inventoryFeature } from '../host/inventory.js'
import { createLogger } from '../log.js'
import type { GlobalOptions } from '../cli.js'
import { createPruneFeature } from '../jobs/prune-feature.js'

/** The agent's features, in start order. Each adds its routes and returns its components. */
const FEATURES: Feature[] = [inventoryFeature, createPruneFeature()]
const COLLECTORS: string[] = [...INVENTORY_COLLECTORS]

export async function run(opts: { printConfig?: boolean }, globals: GlobalOptions): Promise<number> {
  const config = loadAgentConfig(globals.config)
  if (opts.printConfig) {
    process.stdout.write(globals.json ? JSON.stringify(config, null, 2) + '\n' : stringify(config))
    return 0
  }
  const log = createLogger({ level: config.log.level })
  const agent = new Agent(config, log, FEATURES, COLLECTORS)
  let stopping: Promise<void> | null = null
  const done = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      log.info({ signal }, 'stopping')
      // Hard limit: a component that will not stop must not keep a service manager waiting.
      setTimeout(() => { log.error('stop took longer than 4 s; exiting'); process.exit(1) }, 4000).unref()
      stopping = agent.stop().then(() => resolve(0), () => resolve(1))
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  try {
    await agent.start()
    log.info({ hostId: config.hostId, listen: config.listen }, 'agent started')
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'agent failed to start')
    await agent.stop()
    return 1
  }
  const code = await done
  log.info('stopped')
  return code
}

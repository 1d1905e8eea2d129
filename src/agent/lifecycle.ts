// start()/stop() per component: constructors only store dependencies, work begins in start(),
// timers and sockets end in stop(). A stop during start-up stops what already started.
import type { Logger } from 'pino'

export interface Component {
  readonly name: string
  start(): Promise<void>
  stop(): Promise<void>
}

export class Lifecycle {
  private readonly started: Component[] = []
  private stopping = false

  constructor(private readonly log: Logger) {}

  async start(components: Component[]): Promise<void> {
    for (const component of components) {
      if (this.stopping) return
      this.started.push(component)
      await component.start()
      this.log.debug({ component: component.name }, 'started')
    }
  }

  async stop(): Promise<void> {
    this.stopping = true
    for (const component of this.started.reverse()) {
      try {
        await component.stop()
      } catch (err) {
        this.log.error({ component: component.name, err: (err as Error).message }, 'failed to stop cleanly')
      }
    }
    this.started.length = 0
  }
}

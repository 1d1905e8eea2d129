// Named actions (prune, prewarm, check, status) that any trigger can invoke the same way: the HTTP
// API, the coordinator's commands, the CLI. Features register what they offer.

export type Trigger = 'watcher' | 'schedule' | 'http' | 'alertmanager' | 'coordinator' | 'cli'

export type ActionHandler = (args: Record<string, unknown>, trigger: Trigger) => Promise<unknown>

export class ActionRegistry {
  private readonly handlers = new Map<string, ActionHandler>()

  register(name: string, handler: ActionHandler): void {
    if (this.handlers.has(name)) throw new Error(`action ${name} registered twice`)
    this.handlers.set(name, handler)
  }

  has(name: string): boolean {
    return this.handlers.has(name)
  }

  names(): string[] {
    return [...this.handlers.keys()]
  }

  async invoke(name: string, args: Record<string, unknown>, trigger: Trigger): Promise<unknown> {
    const handler = this.handlers.get(name)
    if (!handler) throw new Error(`unknown action ${name}; known: ${this.names().join(', ')}`)
    return handler(args, trigger)
  }
}

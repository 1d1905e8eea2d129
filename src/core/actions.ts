// Named actions (prune, prewarm, check, status) that any trigger can invoke the same way: the HTTP
// API, the coordinator's commands, the CLI. Features register what they offer; ActionMap says what
// each one takes and answers, so a caller inside the agent gets a typed result.
import type { z } from 'zod'
import { InvalidRequestError } from '../errors.js'
import type { CommandAction } from '../protocol.js'
import type { triggerSchema } from '../protocol-events.js'

export type Trigger = z.infer<typeof triggerSchema>

/**
 * action name → the args it takes and the result it answers with. Each feature adds the actions it
 * offers by declaration merging (`declare module '../core/actions.js' { interface ActionMap { … } }`
 * in its own actions.ts), so this contract names no feature's types.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by declaration merging
export interface ActionMap {}

/**
 * The names are the wire protocol's (COMMAND_ACTIONS): indexing ActionMap with them below fails to
 * compile while one of them has no entry.
 */
export type ActionName = CommandAction

/** A handler validates its args itself: they may come from a request body or a coordinator frame. */
export type ActionHandler<K extends ActionName> = (args: unknown, trigger: Trigger) => Promise<ActionMap[K]['result']>

export class UnknownActionError extends InvalidRequestError {
  constructor(name: string, known: string[]) {
    super(`unknown action ${name}; known: ${known.join(', ')}`)
    this.name = 'UnknownActionError'
  }
}

export class ActionRegistry {
  private readonly handlers = new Map<string, (args: unknown, trigger: Trigger) => Promise<unknown>>()

  register<K extends ActionName>(name: K, handler: ActionHandler<K>): void {
    if (this.handlers.has(name)) throw new Error(`action ${name} registered twice`)
    this.handlers.set(name, handler)
  }

  has(name: string): boolean {
    return this.handlers.has(name)
  }

  names(): string[] {
    return [...this.handlers.keys()]
  }

  /** runs an action with args of its declared type */
  invoke<K extends ActionName>(name: K, args: ActionMap[K]['args'], trigger: Trigger): Promise<ActionMap[K]['result']> {
    return this.dispatch(name, args, trigger) as Promise<ActionMap[K]['result']>
  }

  /** runs an action named from outside (a request path, a coordinator command) with unchecked args */
  async dispatch(name: string, args: unknown, trigger: Trigger): Promise<unknown> {
    const handler = this.handlers.get(name)
    if (!handler) throw new UnknownActionError(name, this.names())
    return handler(args, trigger)
  }
}

// The coordinator's commands, run as actions once per command id: the coordinator delivers a
// command at least once, so a repeat is answered with the stored result (or by the run under way),
// and a command an earlier run of the agent started but did not finish is not run again.
import { join } from 'node:path'
import type { AgentContext } from '../core/feature.js'
import { envelop, type Command, type CommandResult } from '../protocol.js'
import { ExecutedCommands, type PriorRun } from './executed-commands.js'
import type { DeliveryEntry } from './delivery.js'

export class CommandRunner {
  private executed: ExecutedCommands | null = null
  /** command ids being run now: a repeat delivered meanwhile is answered by the run's own result */
  private readonly running = new Set<string>()

  constructor(
    private readonly ctx: Pick<AgentContext, 'config' | 'log' | 'actions' | 'now'>,
    /** queues a result for the coordinator */
    private readonly enqueue: (entry: DeliveryEntry) => void,
  ) {}

  open(): void {
    this.executed = new ExecutedCommands(join(this.ctx.config.stateDir, 'executed-commands.db'))
  }

  close(): void {
    this.executed?.close()
  }

  /** Runs a command once per id: a repeat is answered with the stored result, or by the run under way. */
  async run(command: Command): Promise<void> {
    const { log, config } = this.ctx
    const { commandId } = command
    if (this.running.has(commandId)) {
      log.info({ commandId }, 'a repeated command that is still running: its result follows')
      return
    }
    const prior = this.priorRun(commandId)
    if (prior.state === 'finished') {
      const what = 'a repeated command: answering with the stored result, not running it again'
      log.info({ commandId, action: command.action }, what)
      const id = (JSON.parse(prior.resultMessage) as { id: string }).id
      return this.enqueue({ id, kind: 'command.result', type: command.action, message: prior.resultMessage })
    }
    if (prior.state === 'started') {
      const what = 'a repeated command that an earlier run of the agent did not finish: not running it again'
      log.warn({ commandId, action: command.action }, what)
      const error = 'the agent stopped while running this command; it was not run again'
      const body = { type: 'command.result' as const, commandId, ok: false, error }
      const result = envelop<CommandResult>(config.hostId, body, { ts: this.ctx.now().toISOString() })
      return this.record(commandId, command.action, JSON.stringify(result), result.id)
    }
    this.running.add(commandId)
    try {
      await this.execute(command)
    } finally {
      this.running.delete(commandId)
    }
  }

  private priorRun(commandId: string): PriorRun {
    try {
      return this.executed?.prior(commandId) ?? { state: 'unknown' }
    } catch (err) {
      const what = 'cannot read the executed commands; treating the command as new'
      this.ctx.log.error({ commandId, err: (err as Error).message }, what)
      return { state: 'unknown' }
    }
  }

  /** Stores the result for repeats, then queues it for the coordinator. */
  private record(commandId: string, action: string, message: string, id: string): void {
    try {
      this.executed?.finish(commandId, message)
    } catch (err) {
      this.ctx.log.error({ commandId, err: (err as Error).message }, 'cannot record a command result for repeats')
    }
    this.enqueue({ id, kind: 'command.result', type: action, message })
  }

  private async execute(command: Command): Promise<void> {
    const { log, actions, config } = this.ctx
    try {
      this.executed?.begin(command.commandId)
    } catch (err) {
      const what = 'cannot record that a command started; running it anyway'
      log.error({ commandId: command.commandId, err: (err as Error).message }, what)
    }
    log.info({ commandId: command.commandId, action: command.action }, 'running a command from the coordinator')
    let body: Pick<CommandResult, 'ok' | 'result' | 'error'>
    try {
      body = { ok: true, result: await actions.dispatch(command.action, command.args, 'coordinator') }
    } catch (err) {
      body = { ok: false, error: (err as Error).message }
    }
    const resultBody = { type: 'command.result' as const, commandId: command.commandId, ...body }
    let result = envelop<CommandResult>(config.hostId, resultBody, { ts: this.ctx.now().toISOString() })
    let text = JSON.stringify(result)
    const maxFrameBytes = config.coordinator.maxFrameBytes
    if (Buffer.byteLength(text) > maxFrameBytes) {
      const error = `the result is ${Buffer.byteLength(text)} bytes, over the frame limit of ${maxFrameBytes}`
      result = { ...result, ok: false, result: undefined, error }
      text = JSON.stringify(result)
    }
    this.record(command.commandId, command.action, text, result.id)
  }
}

// Exit codes of INTERFACES.md; sysexits(3) numbers where one exists.
export const EXIT = {
  ok: 0,
  no: 1, // the answer is "no": incompatible, a pull failed, could not free enough
  usage: 2,
  /** the same 2: the answer depends on a fact the host does not know (gpuhost check, gpuhost compat) */
  undecided: 2,
  unavailable: 69, // a service it needs is unreachable (Docker, the agent)
  config: 78,
} as const

/** An error that carries the exit code the CLI should end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

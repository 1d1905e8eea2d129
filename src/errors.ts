// Errors the agent's own code throws to say what went wrong, not how to answer it: the HTTP server
// maps them to a status, the coordinator link to a failed command result, the CLI to an exit code.

/** the request (args of an action, a webhook payload) is malformed: HTTP 400, CLI usage error */
export class InvalidRequestError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InvalidRequestError'
  }
}

/** something the action needs is not there now (Docker, the agent is stopping): HTTP 503, CLI 69 */
export class UnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UnavailableError'
  }
}

/** A config that could not be read or is invalid; `problems` names every bad key by its path. */
export class ConfigError extends Error {
  constructor(
    readonly file: string | null,
    readonly problems: string[],
  ) {
    super(`invalid configuration${file ? ` in ${file}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

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

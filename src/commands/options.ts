// The options every command takes, parsed by src/cli.ts and passed to the command it loads.
export interface GlobalOptions {
  config?: string
  json?: boolean
}

import { CliError, EXIT } from '../exit-codes.js'

export function notYetImplemented(command: string): never {
  throw new CliError(`${command}: not yet implemented`, EXIT.usage)
}

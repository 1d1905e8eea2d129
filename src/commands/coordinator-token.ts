// gpuhost coordinator token HOSTID: prints the agent token for one host, derived from the
// coordinator's agent secret (agentSecretFile); put it in that host's coordinator.tokenFile.
import { loadCoordinatorConfig, readTokenFile } from '../config.js'
import { hostToken } from '../coordinator/identity.js'
import { CliError, EXIT } from '../exit-codes.js'
import type { GlobalOptions } from './options.js'

export async function run(opts: { hostId?: string }, globals: GlobalOptions): Promise<number> {
  const hostId = opts.hostId?.trim()
  if (!hostId) throw new CliError('a host id is required: gpuhost coordinator token HOSTID', EXIT.usage)
  const config = loadCoordinatorConfig(globals.config)
  let secret: string | null
  try {
    secret = readTokenFile(config.agentSecretFile)
  } catch (err) {
    throw new CliError(`cannot read agentSecretFile: ${(err as Error).message}`, EXIT.config)
  }
  if (secret === null) throw new CliError('agentSecretFile is not set in the coordinator config', EXIT.config)
  const token = hostToken(secret, hostId)
  process.stdout.write(globals.json ? JSON.stringify({ hostId, token }) + '\n' : token + '\n')
  return EXIT.ok
}

#!/usr/bin/env node
// gpuhost <command>: argument parsing only; each command lives in src/commands/.
import { Command, CommanderError, Option } from 'commander'
import { CliError, EXIT } from './exit-codes.js'
import { ConfigError, InvalidRequestError, UnavailableError } from './errors.js'
import { VERSION } from './version.js'
import type { GlobalOptions } from './commands/options.js'

type Action = (opts: Record<string, unknown>, globals: GlobalOptions) => Promise<number>

/** Loads a command module only when it runs, so `gpuhost compat` never loads Docker or the coordinator. */
function lazy(load: () => Promise<{ run: Action }>): (opts: Record<string, unknown>, cmd: Command) => Promise<void> {
  return async (opts, cmd) => {
    const globals = cmd.optsWithGlobals() as GlobalOptions
    const { run } = await load()
    process.exitCode = await run(opts, globals)
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value]

export function buildProgram(): Command {
  const program = new Command('gpuhost')
    .description(
      'GPU host agent: CUDA compatibility, Docker disk and image metrics, safe pruning, prewarming, fleet reporting',
    )
    .version(VERSION, '--version')
    .option('--config <file>', 'config file (else $GPUHOST_CONFIG, else /etc/gpuhost/agent.yaml when it exists)')
    .option('--json', 'machine output on stdout, logs on stderr')
    .showHelpAfterError()
    .exitOverride()

  program
    .command('agent')
    .description('run the daemon in the foreground until SIGTERM/SIGINT')
    .option('--print-config', 'print the effective configuration and exit')
    .action(lazy(() => import('./commands/agent.js')))

  program
    .command('check')
    .description('GPU facts and a CUDA verdict for each local image (or each --image)')
    .option('--image <ref>', 'an image to check instead of the local ones (repeatable)', collect)
    .action(lazy(() => import('./commands/check.js')))

  program
    .command('compat')
    .description('one CUDA verdict, pure: no Docker, no GPU')
    .requiredOption('--driver <version>', 'driver version, e.g. 535.104.05')
    .option('--cuda <version>', 'CUDA version the driver supports (default: from the driver version)')
    .option('--brand <token>', 'NVIDIA brand token: tesla, nvidia, nvidiartx, geforce, quadro, titan, …')
    .option('--arch <cc>', 'compute capability, e.g. 8.0')
    .addOption(new Option('--require <expr>', 'an NVIDIA_REQUIRE_CUDA expression').conflicts('imageCuda'))
    .addOption(new Option('--image-cuda <version>', 'an image that sets only CUDA_VERSION').conflicts('require'))
    .action(lazy(() => import('./commands/compat.js')))

  program
    .command('prune')
    .description('one prune now, with the configured policy')
    .option('--dry-run', 'show the plan and remove nothing')
    .option('--target-percent <n>', 'free down to this usage instead of prune.lowPercent', Number)
    .option('--schedule <name>', 'with the rules of this prune.schedules entry (deep parts included)')
    .action(lazy(() => import('./commands/prune.js')))

  program
    .command('prewarm')
    .description('one prewarm now: the configured list, or the --image refs')
    .option('--image <ref>', 'an image to prewarm instead of the configured list (repeatable)', collect)
    .option('--dry-run', 'show the plan and pull nothing')
    .action(lazy(() => import('./commands/prewarm.js')))

  program
    .command('status')
    .description("the running agent's /v1/status")
    .option('--url <url>', 'the agent to ask (default: http://<listen> from the config)')
    .action(lazy(() => import('./commands/status.js')))

  const coordinator = program
    .command('coordinator')
    .description('run the reference coordinator (config: --config, else /etc/gpuhost/coordinator.yaml)')
    .option('--print-config', 'print the effective configuration and exit')
    .action(lazy(() => import('./commands/coordinator.js')))
  coordinator
    .command('token')
    .description("print HOSTID's agent token, derived from the coordinator's agentSecretFile")
    .argument('<hostId>', "the host the token speaks for (the agent's hostId)")
    .action(async (hostId: string, opts: Record<string, unknown>, cmd: Command) => {
      await lazy(() => import('./commands/coordinator-token.js'))({ ...opts, hostId }, cmd)
    })

  const rollout = program
    .command('rollout')
    .description("the coordinator's rollouts: images prewarmed and held on hosts, a few hosts at a time")
  const remote = (cmd: Command) =>
    cmd
      .requiredOption('--url <url>', 'the coordinator, e.g. https://coordinator:9480')
      .requiredOption('--token-file <file>', "a file holding the coordinator's admin token")
  remote(rollout.command('start'))
    .description('start a rollout; prints its id (or follows it with --wait)')
    .option('--image <ref>', 'an image to roll out (repeatable)', collect)
    .option('--selector <selector>', 'hosts whose labels match, e.g. rack=a,gpu in (h100,a100)')
    .option('--max-parallel <n>', 'hosts prewarming at once', Number)
    .option('--max-failed <n>', 'start no more hosts after this many failed', Number)
    .option('--replaces <id>', "release this earlier rollout's held images on the hosts reached (repeatable)", collect)
    .option(
      '--registry-parallel <n>',
      'hosts reading an image from its registry per rollout (per label value); the rest from peers',
      Number,
    )
    .option('--peer-affinity-label <key>', 'a host label such as rack: registry once per value, own-value peers first')
    .option('--no-peers', 'every host reads its registry or mirrors, none another host')
    .option('--dry-run', 'show the hosts it would reach and the images each would skip; start nothing')
    .option('--wait', 'follow it until it finishes; exit 1 unless it succeeded')
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      await lazy(() => import('./commands/rollout.js'))({ ...opts, action: 'start' }, cmd)
    })
  remote(rollout.command('status'))
    .description('a rollout with its hosts (with --wait: followed until it finishes)')
    .argument('<id>', 'the rollout id')
    .option('--wait', 'follow it until it finishes; exit 1 unless it succeeded')
    .action(async (id: string, opts: Record<string, unknown>, cmd: Command) => {
      await lazy(() => import('./commands/rollout.js'))({ ...opts, id, action: 'status' }, cmd)
    })
  for (const action of ['cancel', 'pause', 'resume'] as const) {
    remote(rollout.command(action))
      .description(`${action} a rollout`)
      .argument('<id>', 'the rollout id')
      .action(async (id: string, opts: Record<string, unknown>, cmd: Command) => {
        await lazy(() => import('./commands/rollout.js'))({ ...opts, id, action }, cmd)
      })
  }

  return program
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return Number(process.exitCode ?? 0)
  } catch (err) {
    if (err instanceof CommanderError) {
      const benign = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)
      return benign ? EXIT.ok : EXIT.usage
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`gpuhost: ${err.message}\n`)
      return EXIT.config
    }
    if (err instanceof CliError) {
      process.stderr.write(`gpuhost: ${err.message}\n`)
      return err.exitCode
    }
    if (err instanceof InvalidRequestError || err instanceof UnavailableError) {
      process.stderr.write(`gpuhost: ${err.message}\n`)
      return err instanceof InvalidRequestError ? EXIT.usage : EXIT.unavailable
    }
    process.stderr.write(`gpuhost: ${(err as Error).stack ?? String(err)}\n`)
    return 70
  }
}

// Exit explicitly: a library's keep-alive socket must not hold a finished command open.
void main(process.argv).then((code) => process.exit(code))

// gpuhost compat: one verdict, pure — what NVIDIA's container runtime would decide for a
// requirement on a host with the given driver (and brand, arch). No Docker, no GPU. A condition on a
// fact not given and not derivable (the CUDA version of a driver older than NVIDIA's table; arch when
// only --brand is given) is unknown: the answer is UNKNOWN with exit 2, never a silent yes.
import type { GlobalOptions } from './options.js'
import { BRAND_TOKENS } from '../compat/brand.js'
import { evaluateOnHost } from '../compat/check.js'
import { cudaVersionForDriver } from '../compat/cuda-drivers.js'
import { imageRequirements, type StatedRequirement } from '../compat/image-requirements.js'
import { RequirementError, type DeviceFacts, type DriverFacts } from '../compat/requirement.js'
import { isVersion } from '../compat/version.js'
import { CliError, EXIT } from '../exit-codes.js'

interface CompatOptions {
  driver: string
  cuda?: string
  brand?: string
  arch?: string
  require?: string
  imageCuda?: string
}

export async function run(raw: Record<string, unknown>, globals: GlobalOptions): Promise<number> {
  const opts = raw as unknown as CompatOptions
  const driver = hostDriver(opts)
  const device = hostDevice(opts)
  let requirements: StatedRequirement[]
  try {
    requirements = stated(opts)
  } catch (err) {
    return malformed(err, globals)
  }
  // The note on brand and arch only where the requirement has such a condition: elsewhere it says nothing.
  const label = device
    ? `a GPU${device.brand ? ` of brand ${device.brand}` : ''}${device.arch ? ` with arch ${device.arch}` : ''}`
    : requirements.some((r) => namesBrandOrArch(r.expression))
      ? 'any GPU (no --brand or --arch: brand and arch conditions hold, as when the runtime sees no GPU)'
      : 'any GPU'
  let verdict
  try {
    verdict = evaluateOnHost(requirements, driver, [{ label, device }])
  } catch (err) {
    return malformed(err, globals)
  }
  const out = {
    compatible: verdict.compatible,
    reason: verdict.reason,
    matched: verdict.matched[0] ?? null,
    requirement: requirements.map((r) => r.expression).join('; '),
    driverVersion: driver.driverVersion,
    cudaVersion: driver.cudaVersion,
    brand: device?.brand ?? null,
    arch: device?.arch ?? null,
    ...(verdict.unknown ? { unknown: verdict.unknown } : {}),
  }
  if (globals.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n')
  else {
    const word = verdict.compatible === null ? 'UNKNOWN' : verdict.compatible ? 'compatible' : 'INCOMPATIBLE'
    process.stdout.write(`${word}: ${verdict.reason}\n`)
  }
  if (verdict.compatible === null) return EXIT.undecided
  return verdict.compatible ? EXIT.ok : EXIT.no
}

/** whether a condition of the expression is on `brand` or `arch` (`key op value`, comma- or space-separated) */
function namesBrandOrArch(expression: string): boolean {
  return expression.split(/[\s,]+/).some((c) => /^(brand|arch)\s*[=!<>]/i.test(c))
}

function hostDriver(opts: CompatOptions): DriverFacts {
  if (!isVersion(opts.driver))
    throw new CliError(`--driver ${opts.driver}: not a driver version (e.g. 535.104.05)`, EXIT.usage)
  // A branch is not a release: 535 would be read as 535.0, older than every 535 driver, and get the
  // CUDA version of the branch before it. nvidia-smi always prints at least MAJOR.MINOR.
  if (!opts.driver.includes('.'))
    throw new CliError(
      `--driver ${opts.driver}: a driver branch, not a release; give the version nvidia-smi prints ` +
        `(e.g. ${opts.driver}.104.05): the releases of a branch support different CUDA versions`,
      EXIT.usage,
    )
  if (opts.cuda !== undefined && !isVersion(opts.cuda))
    throw new CliError(`--cuda ${opts.cuda}: not a CUDA version (e.g. 12.2)`, EXIT.usage)
  // A driver older than NVIDIA's table has no known CUDA version: its `cuda` conditions are unknown.
  const cuda = opts.cuda ?? cudaVersionForDriver(opts.driver)
  return cuda === null ? { driverVersion: opts.driver } : { driverVersion: opts.driver, cudaVersion: cuda }
}

function hostDevice(opts: CompatOptions): DeviceFacts | null {
  if (opts.brand === undefined && opts.arch === undefined) return null
  const device: DeviceFacts = {}
  if (opts.brand !== undefined) {
    const token = opts.brand.toLowerCase()
    if (!BRAND_TOKENS.includes(token))
      throw new CliError(
        `--brand ${opts.brand}: not one of NVIDIA's brand tokens (${BRAND_TOKENS.join(', ')})`,
        EXIT.usage,
      )
    device.brand = token
  }
  if (opts.arch !== undefined) {
    if (!isVersion(opts.arch))
      throw new CliError(`--arch ${opts.arch}: not a compute capability (e.g. 8.0)`, EXIT.usage)
    device.arch = opts.arch
  }
  return device
}

function stated(opts: CompatOptions): StatedRequirement[] {
  if (opts.require !== undefined) return [{ source: '--require', expression: opts.require }]
  if (opts.imageCuda !== undefined) return imageRequirements({ CUDA_VERSION: opts.imageCuda }).requirements
  throw new CliError('give the requirement: --require EXPR or --image-cuda VERSION', EXIT.usage)
}

/** exit 2 with the runtime's reason; with --json the answer is still JSON */
function malformed(err: unknown, globals: GlobalOptions): number {
  if (!(err instanceof RequirementError)) throw err
  if (globals.json)
    process.stdout.write(
      JSON.stringify({ compatible: null, reason: err.message, matched: null, invalid: err.reason }, null, 2) + '\n',
    )
  process.stderr.write(`gpuhost: ${err.message}\n`)
  return EXIT.usage
}

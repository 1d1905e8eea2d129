// Which requirements an image states, read from its config Env exactly as NVIDIA's container
// toolkit reads them (internal/config/image/cuda_image.go) before it calls the runtime:
//  - every NVIDIA_REQUIRE_* variable except NVIDIA_REQUIRE_JETPACK* is one requirement; all must hold;
//  - NVIDIA_DISABLE_REQUIRE switches all of them off when it parses as a true boolean (Go's ParseBool);
//  - an image with a non-empty CUDA_VERSION and no NVIDIA_REQUIRE_CUDA ("legacy") requires
//    cuda>=MAJOR.MINOR; a CUDA_VERSION that is not a semantic version stops the container.
import { ARCH_LIST_VARIABLE } from './kernels.js'
import { RequirementError } from './requirement.js'

const REQUIRE_PREFIX = 'NVIDIA_REQUIRE_'
const JETPACK_PREFIX = 'NVIDIA_REQUIRE_JETPACK'
const DISABLE = 'NVIDIA_DISABLE_REQUIRE'
const CUDA_VERSION = 'CUDA_VERSION'
const REQUIRE_CUDA = 'NVIDIA_REQUIRE_CUDA'

export interface StatedRequirement {
  /** the variable it came from; CUDA_VERSION for the legacy form */
  source: string
  expression: string
}

export interface ImageRequirements {
  /** NVIDIA_DISABLE_REQUIRE is true: the runtime checks nothing */
  disabled: boolean
  requirements: StatedRequirement[]
}

/** the variables of an image's Env that bear on CUDA compatibility, and TORCH_CUDA_ARCH_LIST for kernel coverage */
export function cudaEnvFromList(env: readonly string[] | null | undefined): Record<string, string> {
  const picked: Record<string, string> = {}
  for (const entry of env ?? []) {
    const eq = entry.indexOf('=')
    const name = eq < 0 ? entry : entry.slice(0, eq)
    const wanted = name.startsWith(REQUIRE_PREFIX) || [DISABLE, CUDA_VERSION, ARCH_LIST_VARIABLE].includes(name)
    if (wanted) picked[name] = eq < 0 ? '' : entry.slice(eq + 1)
  }
  return picked
}

/** Throws RequirementError when CUDA_VERSION is not a version the toolkit accepts. */
export function imageRequirements(env: Record<string, string>): ImageRequirements {
  const disabled = DISABLE in env && parseGoBool(env[DISABLE]) === true
  if (disabled) return { disabled, requirements: [] }
  const requirements: StatedRequirement[] = Object.keys(env)
    .filter((name) => name.startsWith(REQUIRE_PREFIX) && !name.startsWith(JETPACK_PREFIX))
    .sort()
    .map((name) => ({ source: name, expression: env[name] }))
  const legacy = env[CUDA_VERSION] ?? ''
  if (legacy.length > 0 && (env[REQUIRE_CUDA] ?? '').length === 0) {
    const majorMinor = semverMajorMinor(legacy)
    if (majorMinor === null) {
      throw new RequirementError(
        `CUDA_VERSION=${legacy} is not a valid version; the toolkit refuses the container`,
        legacy,
      )
    }
    requirements.push({ source: CUDA_VERSION, expression: `cuda>=${majorMinor}` })
  }
  return { disabled, requirements }
}

/** Go's strconv.ParseBool: true, false, or null for anything else */
export function parseGoBool(s: string): boolean | null {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false
  return null
}

// golang.org/x/mod/semver: vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]], no leading zeros.
const NUM = '(0|[1-9][0-9]*)'
const PRE_ID = '(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)'
const SEMVER = new RegExp(
  `^v${NUM}(?:\\.${NUM}(?:\\.${NUM}(?:-${PRE_ID}(?:\\.${PRE_ID})*)?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?)?)?$`,
)
const UINT32_MAX = 4294967295

/** "11.8.0" → "11.8", "12" → "12.0"; null when the toolkit would reject it */
export function semverMajorMinor(version: string): string | null {
  const m = SEMVER.exec('v' + (version.startsWith('v') ? version.slice(1) : version))
  if (!m) return null
  const major = Number(m[1])
  const minor = Number(m[2] ?? '0')
  if (major > UINT32_MAX || minor > UINT32_MAX) return null
  return `${m[1]}.${m[2] ?? '0'}`
}

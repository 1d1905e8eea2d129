// The compat evaluator the coordinator uses for /v1/compat: the same check the agents run on their
// local images, put to a host's reported GPU facts and an image's reported CUDA env.
import { checkImageCompat } from '../compat/check.js'
import type { CompatEvaluator } from './compat.js'

export const COMPAT_EVALUATOR: CompatEvaluator | null = checkImageCompat

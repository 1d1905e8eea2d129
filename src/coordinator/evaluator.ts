// The compat evaluator the coordinator uses for /v1/compat. Null until a CUDA requirement checker
// is available to this build; then this is the one line to change, e.g.
//   export const COMPAT_EVALUATOR: CompatEvaluator | null = (env, gpu) => checkImageCompat(env, gpu)
import type { CompatEvaluator } from './compat.js'

export const COMPAT_EVALUATOR: CompatEvaluator | null = null

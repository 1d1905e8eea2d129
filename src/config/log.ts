// The log section, the same for the agent and the coordinator: each describes it as its own.
import { z } from 'zod'

export const logSection = z
  .strictObject({
    level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
      .default('info')
      .describe('the least severe level logged'),
  })
  .prefault({})

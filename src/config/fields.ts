// Field types several sections of the agent's and the coordinator's config share.
import { z } from 'zod'
import { isCronExpression } from '../schedule.js'

export const percent = z.number().min(0).max(100)
export const seconds = z.number().positive()
export const wsUrl = z.string().regex(/^wss?:\/\//, 'must start with ws:// or wss://')
export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT')
export const cronOrNull = z
  .string()
  .min(1)
  .refine(
    (v) => isCronExpression(v),
    'must be a cron expression (minute hour day month weekday, optionally seconds first)',
  )
  .nullable()

/** the largest WebSocket frame either side of the agent link sends or accepts, unless configured */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
export const maxFrameBytes = z.number().int().min(1024).default(DEFAULT_MAX_FRAME_BYTES)

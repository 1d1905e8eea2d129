// The agent↔coordinator protocol (JSON text frames over WebSocket), shared by both sides. Every
// frame is validated on arrival; a bad one becomes a ProtocolError that the receiver logs and
// answers with an `error` message, so no peer can crash the other with a frame.
import { labelsSchema } from './labels.js'
import { hostFactsSchema } from './inventory/host-facts-schema.js'
import { isBaseUrl } from './validation.js'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'

export const PROTOCOL_VERSION = 1
export const AGENTS_PATH = '/v1/agents'
/** the actions a coordinator may command; the agent's ActionName is this list (src/core/actions.ts) */
export const COMMAND_ACTIONS = ['prune', 'prewarm', 'release', 'check', 'status'] as const
export type CommandAction = (typeof COMMAND_ACTIONS)[number]

const id = z.string().min(1).max(200)
const object = z.record(z.string(), z.unknown())

const envelope = {
  v: z.literal(PROTOCOL_VERSION),
  id,
  ts: z.iso.datetime({ offset: true }),
  hostId: z.string().min(1).max(253),
}

/**
 * What a host serving peers (`peers.serve`) advertises: the base URL other hosts reach its peer
 * listener at, and how many exports it streams at once. The coordinator names it in the prewarm
 * commands of the hosts that fetch from it.
 */
export const peerServingSchema = z.strictObject({
  // a base URL only: what other hosts are sent to is always its /v1/images/{id}/export
  url: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .refine((u) => isBaseUrl(u), { message: 'must be a base URL (scheme, host, port), without path or query' }),
  maxUploads: z.number().int().min(1).max(64),
})
export type PeerServing = z.infer<typeof peerServingSchema>

/** agent → coordinator: who it is and what it knows at connect time */
export const helloSchema = z.strictObject({
  ...envelope,
  type: z.literal('hello'),
  version: z.string().min(1).max(100),
  actions: z.array(z.string().max(100)).max(100).default([]),
  // Free-form (the agent's status), except `peers` and `host`: inside the facts rather than fields of
  // their own, so an older coordinator, whose hello schema is strict, still accepts a newer agent's hello.
  // `host`: the OS, CPU, memory, system and block devices (bounded; see host-facts-schema.ts).
  facts: z.looseObject({ peers: peerServingSchema.optional(), host: hostFactsSchema.nullable().optional() }),
  /** the host's labels (agent config `labels`) */
  labels: labelsSchema.default({}),
})

/** one local image as the coordinator needs it to answer compat questions for the fleet */
export const reportedImageSchema = z.strictObject({
  id: z.string().max(200),
  repoTags: z.array(z.string().max(500)).max(200),
  repoDigests: z.array(z.string().max(500)).max(200),
  sizeBytes: z.number().nonnegative(),
  cudaEnv: z.record(z.string(), z.string()).nullable(),
  compat: z
    .object({
      compatible: z.boolean().nullable(),
      reason: z.string(),
      requirement: z.string().nullable(),
      kernels: z.enum(['ok', 'missing', 'unknown']).optional(),
      kernelsReason: z.string().max(2000).optional(),
      enforced: z.boolean().optional(),
    })
    .nullable(),
})
export type ReportedImage = z.infer<typeof reportedImageSchema>

/**
 * agent → coordinator: the host's current facts (as in the agent's /v1/status, plus local images).
 * `localImages` null: unknown yet, or unchanged since the last snapshot on this connection.
 */
export const snapshotSchema = z.strictObject({
  ...envelope,
  type: z.literal('snapshot'),
  gpu: object,
  disk: object.nullable(),
  images: object.nullable(),
  localImages: z.array(reportedImageSchema).max(20_000).nullable(),
  lastPrune: object.nullable(),
  lastPrewarm: object.nullable(),
  /** the host's labels; absent: unchanged */
  labels: labelsSchema.optional(),
  /** the host facts (OS, CPU, memory, devices), once read and after each re-read; absent: unchanged */
  host: hostFactsSchema.optional(),
})

/**
 * agent → coordinator: one bus event; the message id is the event id, so duplicates are dropped by it.
 * `data` is the payload eventPayloadSchemas (protocol-events.ts) defines for `eventType`; it is not
 * checked against it here, so a coordinator still stores the events of a newer agent.
 */
export const eventSchema = z.strictObject({
  ...envelope,
  type: z.literal('event'),
  eventType: z.string().min(1).max(100),
  data: object,
})

/** agent → coordinator: the outcome of a command; also delivered through the outbox and acked */
export const commandResultSchema = z.strictObject({
  ...envelope,
  type: z.literal('command.result'),
  commandId: id,
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().max(10_000).optional(),
})

/** coordinator → agent: these event or result ids are stored; drop them from the outbox */
export const ackSchema = z.strictObject({
  ...envelope,
  type: z.literal('ack'),
  ids: z.array(id).min(1).max(10_000),
})

/** coordinator → agent: run an action, answer with command.result */
export const commandSchema = z.strictObject({
  ...envelope,
  type: z.literal('command'),
  commandId: id,
  action: z.enum(COMMAND_ACTIONS),
  args: object.default({}),
})

/**
 * either way: the frame named by `ref` (when it had a readable id) was refused. `retryable`: the
 * frame was fine but could not be handled now (e.g. the coordinator could not store it); the
 * sender keeps it and sends it again later. Otherwise it would be refused forever and is dropped.
 */
export const errorSchema = z.strictObject({
  ...envelope,
  type: z.literal('error'),
  code: z.enum([
    'bad_json',
    'bad_message',
    'unknown_type',
    'too_large',
    'unsupported_version',
    'internal',
    'store_failed',
  ]),
  message: z.string().max(10_000),
  ref: id.nullable(),
  retryable: z.boolean().default(false),
})

/** WebSocket close codes the coordinator uses when it refuses or ends an agent's connection. */
export const CLOSE_CODES = {
  /** the host's older connection stopped answering pings; a newer one took its place */
  replaced: 4000,
  /** the hello named a host the credential does not speak for */
  wrongHost: 4001,
  /** the host already has a live connection; this one is refused */
  duplicate: 4002,
  /** the coordinator could not store the hello; try again later */
  unavailable: 4003,
} as const

/** Close codes after which an agent keeps backing off instead of reconnecting at once. */
export const REFUSAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CLOSE_CODES.wrongHost,
  CLOSE_CODES.duplicate,
  CLOSE_CODES.unavailable,
])

export const agentMessageSchema = z.discriminatedUnion('type', [
  helloSchema,
  snapshotSchema,
  eventSchema,
  commandResultSchema,
  errorSchema,
])
export const coordinatorMessageSchema = z.discriminatedUnion('type', [ackSchema, commandSchema, errorSchema])

export type Hello = z.infer<typeof helloSchema>
export type SnapshotMessage = z.infer<typeof snapshotSchema>
export type EventMessage = z.infer<typeof eventSchema>
export type CommandResult = z.infer<typeof commandResultSchema>
export type Ack = z.infer<typeof ackSchema>
export type Command = z.infer<typeof commandSchema>
export type ErrorMessage = z.infer<typeof errorSchema>
export type AgentMessage = z.infer<typeof agentMessageSchema>
export type CoordinatorMessage = z.infer<typeof coordinatorMessageSchema>
export type ErrorCode = ErrorMessage['code']

const AGENT_TYPES = new Set(['hello', 'snapshot', 'event', 'command.result', 'error'])
const COORDINATOR_TYPES = new Set(['ack', 'command', 'error'])

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly ref: string | null,
  ) {
    super(message)
    this.name = 'ProtocolError'
  }
}

export type ParseResult<M> = { ok: true; message: M } | { ok: false; error: ProtocolError }

/** Validates a frame an agent sent; never throws. */
export function parseAgentMessage(frame: string | Buffer, maxBytes: number): ParseResult<AgentMessage> {
  return parseFrame(frame, maxBytes, AGENT_TYPES, agentMessageSchema)
}

/** Validates a frame a coordinator sent; never throws. */
export function parseCoordinatorMessage(frame: string | Buffer, maxBytes: number): ParseResult<CoordinatorMessage> {
  return parseFrame(frame, maxBytes, COORDINATOR_TYPES, coordinatorMessageSchema)
}

function parseFrame<M>(
  frame: string | Buffer,
  maxBytes: number,
  types: Set<string>,
  schema: z.ZodType<M>,
): ParseResult<M> {
  const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length
  if (size > maxBytes) {
    // Name the refused message when its id is readable at the start, so the sender can drop it.
    const head = typeof frame === 'string' ? frame.slice(0, 256) : frame.subarray(0, 256).toString()
    const ref = /^\{"v":\d+,"id":"([^"\\]{1,200})"/.exec(head)?.[1] ?? null
    return fail('too_large', `frame of ${size} bytes is over the limit of ${maxBytes}`, ref)
  }
  let raw: unknown
  try {
    raw = JSON.parse(frame.toString())
  } catch (err) {
    return fail('bad_json', `frame is not JSON: ${(err as Error).message}`, null)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return fail('bad_message', 'frame must be a JSON object', null)
  const fields = raw as Record<string, unknown>
  const ref = typeof fields.id === 'string' && fields.id.length <= 200 ? fields.id : null
  if (fields.v !== PROTOCOL_VERSION)
    return fail(
      'unsupported_version',
      `protocol version ${JSON.stringify(fields.v)} is not supported; this side speaks v${PROTOCOL_VERSION}`,
      ref,
    )
  if (typeof fields.type !== 'string' || !types.has(fields.type)) {
    return fail(
      'unknown_type',
      `unknown message type ${JSON.stringify(fields.type)}; expected one of ${[...types].join(', ')}`,
      ref,
    )
  }
  const result = schema.safeParse(raw)
  if (result.success) return { ok: true, message: result.data }
  const problems = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(message)'}: ${i.message}`)
  return fail('bad_message', `bad ${fields.type} message: ${problems.join('; ')}`, ref)
}

function fail(code: ErrorCode, message: string, ref: string | null): { ok: false; error: ProtocolError } {
  return { ok: false, error: new ProtocolError(code, message, ref) }
}

type Body<M> = M extends unknown ? Omit<M, 'v' | 'id' | 'ts' | 'hostId'> : never

/** Builds a message with its envelope; `id` and `ts` default to a fresh id and now. */
export function envelop<M extends AgentMessage | CoordinatorMessage>(
  hostId: string,
  body: Body<M>,
  opts: { id?: string; ts?: string } = {},
): M {
  return {
    v: PROTOCOL_VERSION,
    id: opts.id ?? randomUUID(),
    ts: opts.ts ?? new Date().toISOString(),
    hostId,
    ...body,
  } as unknown as M
}

export function errorReply(hostId: string, error: ProtocolError, retryable = false): ErrorMessage {
  const { code, message, ref } = error
  return envelop<ErrorMessage>(hostId, { type: 'error', code, message, ref, retryable })
}

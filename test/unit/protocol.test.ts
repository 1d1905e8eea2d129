import t from 'tap'
import { closeReason } from '../../src/coordinator/hub/replies.js'
import {
  envelop,
  errorReply,
  parseAgentMessage,
  parseCoordinatorMessage,
  ProtocolError,
  type EventMessage,
} from '../../src/protocol.js'

const base = { v: 1, id: 'm-1', ts: '2026-11-23T10:00:00.000Z', hostId: 'gpu-node-1' }
const LIMIT = 64 * 1024

t.test('valid agent frames parse to typed messages', async (t) => {
  const frames = [
    { ...base, type: 'hello', version: '0.1.0', actions: ['status'], facts: { gpu: { available: false } } },
    {
      ...base,
      type: 'snapshot',
      gpu: { available: true, driverVersion: '535.104.05' },
      disk: null,
      images: null,
      localImages: null,
      lastPrune: null,
      lastPrewarm: null,
    },
    {
      ...base,
      type: 'snapshot',
      gpu: {},
      disk: { usedPercent: 91.2 },
      images: { count: 3 },
      lastPrune: { ts: base.ts },
      lastPrewarm: null,
      localImages: [
        {
          id: 'sha256:ab',
          repoTags: ['pytorch:2'],
          repoDigests: [],
          sizeBytes: 5,
          cudaEnv: { CUDA_VERSION: '12.1.0' },
          compat: null,
        },
      ],
    },
    { ...base, type: 'event', eventType: 'prune.finished', data: { freedBytes: 10 } },
    { ...base, type: 'command.result', commandId: 'c-1', ok: true, result: { hostId: 'x' } },
    { ...base, type: 'command.result', commandId: 'c-2', ok: false, error: 'unknown action prune' },
    { ...base, type: 'error', code: 'bad_json', message: 'no', ref: null },
  ]
  for (const f of frames) {
    const r = parseAgentMessage(JSON.stringify(f), LIMIT)
    t.ok(r.ok, `${f.type} is valid${r.ok ? '' : `: ${r.error.message}`}`)
    if (r.ok) t.equal(r.message.type, f.type)
  }
})

t.test('valid coordinator frames parse; args default to {}', async (t) => {
  const ack = parseCoordinatorMessage(JSON.stringify({ ...base, type: 'ack', ids: ['e-1', 'e-2'] }), LIMIT)
  t.ok(ack.ok && ack.message.type === 'ack' && ack.message.ids.length === 2)
  const cmd = parseCoordinatorMessage(
    JSON.stringify({ ...base, type: 'command', commandId: 'c-1', action: 'prune' }),
    LIMIT,
  )
  t.ok(cmd.ok)
  if (cmd.ok && cmd.message.type === 'command') t.same(cmd.message.args, {})
})

t.test('bad frames become errors with a code and, when readable, the id they answer', async (t) => {
  const cases: [string, string | Buffer, string, string | null][] = [
    ['not JSON', '{"v":1,', 'bad_json', null],
    ['an array', '[1,2]', 'bad_message', null],
    ['a string', '"hello"', 'bad_message', null],
    ['version 2', JSON.stringify({ ...base, v: 2, type: 'hello' }), 'unsupported_version', 'm-1'],
    ['no version', JSON.stringify({ ...base, v: undefined, type: 'hello' }), 'unsupported_version', 'm-1'],
    ['unknown type', JSON.stringify({ ...base, type: 'gossip' }), 'unknown_type', 'm-1'],
    [
      'a coordinator type from an agent',
      JSON.stringify({ ...base, type: 'command', commandId: 'c', action: 'prune' }),
      'unknown_type',
      'm-1',
    ],
    ['missing field', JSON.stringify({ ...base, type: 'event', data: {} }), 'bad_message', 'm-1'],
    [
      'wrong field type',
      JSON.stringify({ ...base, type: 'event', eventType: 'x', data: 'nope' }),
      'bad_message',
      'm-1',
    ],
    [
      'extra field',
      JSON.stringify({ ...base, type: 'event', eventType: 'x', data: {}, surprise: 1 }),
      'bad_message',
      'm-1',
    ],
    [
      'bad timestamp',
      JSON.stringify({ ...base, ts: 'yesterday', type: 'event', eventType: 'x', data: {} }),
      'bad_message',
      'm-1',
    ],
    [
      'empty hostId',
      JSON.stringify({ ...base, hostId: '', type: 'event', eventType: 'x', data: {} }),
      'bad_message',
      'm-1',
    ],
    [
      'oversized',
      JSON.stringify({ ...base, type: 'event', eventType: 'x', data: { pad: 'x'.repeat(LIMIT) } }),
      'too_large',
      'm-1',
    ],
    ['oversized, id not first', JSON.stringify({ pad: 'x'.repeat(LIMIT), ...base }), 'too_large', null],
    ['binary garbage', Buffer.from([0xff, 0x00, 0x13]), 'bad_json', null],
  ]
  for (const [what, frame, code, ref] of cases) {
    const r = parseAgentMessage(frame, LIMIT)
    t.notOk(r.ok, `${what} is refused`)
    if (!r.ok) {
      t.equal(r.error.code, code, `${what}: ${code}`)
      t.equal(r.error.ref, ref, `${what}: ref`)
    }
  }
  const badAction = parseCoordinatorMessage(
    JSON.stringify({ ...base, type: 'command', commandId: 'c', action: 'format-disk' }),
    LIMIT,
  )
  t.ok(
    !badAction.ok && badAction.error.code === 'bad_message' && /action/.test(badAction.error.message),
    'an unknown action is a bad command',
  )
  const emptyAck = parseCoordinatorMessage(JSON.stringify({ ...base, type: 'ack', ids: [] }), LIMIT)
  t.notOk(emptyAck.ok, 'an ack must name ids')
})

t.test('envelop builds messages that parse, and an error reply answers the refused id', async (t) => {
  const event = envelop<EventMessage>(
    'node-7',
    { type: 'event', eventType: 'agent.started', data: { version: '1' } },
    { id: 'e-9', ts: base.ts },
  )
  t.same(event, {
    v: 1,
    id: 'e-9',
    ts: base.ts,
    hostId: 'node-7',
    type: 'event',
    eventType: 'agent.started',
    data: { version: '1' },
  })
  t.ok(parseAgentMessage(JSON.stringify(event), LIMIT).ok)
  const refused = parseAgentMessage(JSON.stringify({ ...base, type: 'gossip' }), LIMIT)
  if (refused.ok) return t.fail('should be refused')
  const reply = errorReply('coordinator', refused.error)
  t.match(reply, { type: 'error', code: 'unknown_type', ref: 'm-1' })
  t.ok(parseCoordinatorMessage(JSON.stringify(reply), LIMIT).ok, 'the error reply itself is valid')
})

t.test('close reasons fit the 123 bytes a WebSocket close frame allows, whole characters only', async (t) => {
  t.equal(closeReason('short'), 'short')
  const long = closeReason(`hostId ${'ä'.repeat(200)} is not the host of this credential`)
  t.ok(Buffer.byteLength(long) <= 123, `${Buffer.byteLength(long)} bytes`)
  t.notMatch(long, /\uFFFD/, 'no character cut in half')
})

t.test('an error says whether the refused frame may be sent again', async (t) => {
  const retry = errorReply('coordinator', new ProtocolError('store_failed', 'cannot store it now', 'e-1'), true)
  const parsed = parseCoordinatorMessage(JSON.stringify(retry), LIMIT)
  t.match(parsed, { ok: true, message: { type: 'error', code: 'store_failed', ref: 'e-1', retryable: true } })
  const old = { ...base, type: 'error', code: 'bad_message', message: 'no', ref: 'e-2' }
  t.match(
    parseCoordinatorMessage(JSON.stringify(old), LIMIT),
    { ok: true, message: { retryable: false } },
    'an error without the field is not retryable',
  )
})

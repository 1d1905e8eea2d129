// Agent messages as a fleet store receives them, for the store tests.
import type { CommandResult, EventMessage, Hello, SnapshotMessage } from '../../src/protocol.js'

/** a host's hello; `over` replaces whole fields (actions, facts, labels) */
export const hello = (hostId: string, over: Partial<Hello> = {}): Hello => ({
  v: 1,
  id: `h-${hostId}`,
  ts: '2026-11-23T10:00:00.000Z',
  hostId,
  type: 'hello',
  version: '0.1.0',
  actions: ['status'],
  facts: { gpu: { available: true, driverVersion: '535.54.03' }, disk: { usedPercent: 50 }, images: { count: 2 } },
  labels: {},
  ...over,
})

/** an agent's result for `commandId`: `ok` with `result`, or failed with `error` */
export const commandResult = (
  hostId: string,
  commandId: string,
  ok: boolean,
  result: unknown,
  error?: string,
): CommandResult => ({
  v: 1,
  id: `r-${commandId}`,
  ts: '2026-11-23T10:00:02.000Z',
  hostId,
  type: 'command.result',
  commandId,
  ok,
  result,
  ...(error ? { error } : {}),
})

export const event = (id: string, hostId = 'a', eventType = 'pull.finished'): EventMessage => ({
  v: 1,
  id,
  ts: '2026-11-23T10:00:01.000Z',
  hostId,
  type: 'event',
  eventType,
  data: { n: id },
})

export const snapshot = (hostId = 'a'): SnapshotMessage => ({
  v: 1,
  id: 's1',
  ts: '2026-11-23T10:06:00.000Z',
  hostId,
  type: 'snapshot',
  gpu: {},
  disk: null,
  images: null,
  localImages: null,
  lastPrune: null,
  lastPrewarm: null,
})

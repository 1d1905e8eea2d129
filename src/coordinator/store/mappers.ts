// One mapper per record, shared by both engines. The engines differ only in the shape of a row:
// SQLite names columns in camelCase and stores booleans as 0/1, PostgreSQL names them in snake_case
// and returns true/false and bigint counts as strings. normaliseRow() removes the naming difference
// first; the mappers accept either form of a value. JSON documents are text in both engines.
import type { CommandAction } from '../../protocol.js'
import type { HostFacts } from '../../inventory/host-facts-schema.js'
import type { StoredPeerServing } from '../peer-advert.js'
import type { ImageOutcome, RolloutHostState, RolloutSpec, RolloutState } from '../rollouts/plan.js'
import type { Rollout, RolloutHost } from '../rollouts/store.js'
import type { CommandRecord, CommandStatus, EventRecord, HostDetail } from './records.js'

export type Row = Record<string, unknown>

/** a PostgreSQL row with its snake_case column names in the camelCase SQLite uses */
export function normaliseRow(r: Row): Row {
  const out: Row = {}
  for (const [key, value] of Object.entries(r)) out[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = value
  return out
}

export const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v))
export const parse = <T>(v: unknown): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : null)
const text = (v: unknown): string | null => (v as string | null) ?? null

export function toHost(r: Row): HostDetail {
  return {
    hostId: r.hostId as string,
    connected: r.connected === 1 || r.connected === true,
    lastSeen: text(r.lastSeen),
    version: text(r.version),
    gpu: parse(r.gpu),
    disk: parse(r.disk),
    images: parse(r.images),
    lastPrune: parse(r.lastPrune),
    lastPrewarm: parse(r.lastPrewarm),
    labels: parse<Record<string, string>>(r.labels) ?? {},
    peers: parse<StoredPeerServing>(r.peers),
    host: parse<HostFacts>(r.host),
    actions: parse<string[]>(r.actions) ?? [],
    localImages: parse(r.localImages),
  }
}

export function toEvent(r: Row): EventRecord & { seq: number } {
  return {
    seq: Number(r.seq),
    id: r.id as string,
    hostId: r.hostId as string,
    type: r.type as string,
    ts: r.ts as string,
    data: parse<EventRecord['data']>(r.data)!,
  }
}

export function toCommand(r: Row): CommandRecord {
  return {
    commandId: r.commandId as string,
    hostId: r.hostId as string,
    action: r.action as CommandAction,
    args: parse(r.args) ?? {},
    status: r.status as CommandStatus,
    result: parse(r.result),
    error: text(r.error),
    createdAt: r.createdAt as string,
    updatedAt: r.updatedAt as string,
  }
}

export function toRolloutHost(h: Row): RolloutHost {
  return {
    hostId: h.hostId as string,
    state: h.state as RolloutHostState,
    reason: text(h.reason),
    commandId: text(h.commandId),
    images: JSON.parse(h.images as string) as ImageOutcome[],
    bytesPulled: Number(h.bytesPulled),
    startedAt: text(h.startedAt),
    finishedAt: text(h.finishedAt),
  }
}

export function toRollout(r: Row, hosts: RolloutHost[]): Rollout {
  return {
    id: r.id as string,
    state: r.state as RolloutState,
    spec: JSON.parse(r.spec as string) as RolloutSpec,
    createdAt: r.createdAt as string,
    updatedAt: r.updatedAt as string,
    finishedAt: text(r.finishedAt),
    hosts,
  }
}

// The agent's link to a coordinator: where (one URL or replicas), with which token, and its timing.
import { z } from 'zod'
import { maxFrameBytes, seconds, wsUrl } from './fields.js'

export const coordinatorSection = z
  .strictObject({
    url: z
      .union([wsUrl, z.array(wsUrl).min(1).max(32)])
      .nullable()
      .default(null)
      .describe(
        'ws://HOST:9478/v1/agents or wss://…: one URL, or a list of coordinator replicas tried in turn: ' +
          'a failed or closed connection moves to the next one after the reconnect backoff, and the one ' +
          'that accepts is kept until it fails; null: no coordinator',
      ),
    tokenFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("this host's token: `gpuhost coordinator token HOSTID` on the coordinator prints it"),
    caFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('a CA bundle (PEM) to trust for wss://; null: the system CAs'),
    snapshotIntervalSeconds: seconds
      .default(60)
      .describe("how often this host's facts are sent; they are also sent on change, at most every 2 s"),
    outboxMaxEvents: z
      .number()
      .int()
      .min(100)
      .default(10000)
      .describe(
        'events kept for the coordinator until it acks them; when full, the oldest progress events go, ' +
          'then informational ones, then any event; results never',
      ),
    pingIntervalSeconds: seconds
      .default(15)
      .describe('a ping goes out this often; no pong by the next one means the peer is dead'),
    reconnectMaxSeconds: seconds.default(60).describe('reconnect delays grow from 0.5 s to this, with jitter'),
    maxFrameBytes: maxFrameBytes.describe(
      "frames larger than this are neither sent nor accepted; the coordinator's maxFrameBytes should match",
    ),
    resendSeconds: seconds
      .default(30)
      .describe('entries sent and not acked within this time are sent again, in order, on the same connection'),
  })
  .prefault({})
  .describe('the link to a coordinator')

/** coordinator.url as a list: the replicas in the order they are tried */
export function coordinatorUrls(coordinator: Pick<z.infer<typeof coordinatorSection>, 'url'>): string[] {
  const { url } = coordinator
  return url === null ? [] : typeof url === 'string' ? [url] : url
}

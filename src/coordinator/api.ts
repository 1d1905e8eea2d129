// The coordinator's HTTP API (the admin token on every path but /healthz, and /metrics unless
// metricsAuth is off): fleet, events, commands, the Alertmanager webhook and the fleet compat query.
import { matchesSelector, parseSelector, SelectorError, type Requirement } from '../labels.js'
import { z } from 'zod'
import { HttpError, type HttpServer, type Request } from '../http/server.js'
import { COMMAND_ACTIONS } from '../protocol.js'
import { alertmanagerPayloadSchema, routeAlerts } from './alerts.js'
import { fleetCompat, type CompatEvaluator } from './compat.js'
import type { AgentHub } from './hub/hub.js'
import type { FleetStore } from './store/fleet-store.js'
import { publicHost } from './store/records.js'
import type { Registry } from 'prom-client'
import { describeZodIssues } from '../validation.js'

const commandBodySchema = z.strictObject({
  action: z.enum(COMMAND_ACTIONS),
  args: z.record(z.string(), z.unknown()).default({}),
})

const eventsQuerySchema = z.object({
  hostId: z.string().min(1).optional(),
  type: z.string().min(1).optional(),
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
})

const commandsQuerySchema = z.object({
  hostId: z.string().min(1).optional(),
  action: z.enum(COMMAND_ACTIONS).optional(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
})

function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value ?? {})
  if (r.success) return r.data
  throw new HttpError(400, `bad ${what}: ${describeZodIssues(r.error.issues)}`)
}

export function addCoordinatorRoutes(
  http: HttpServer,
  deps: {
    store: FleetStore
    hub: AgentHub
    metrics: Registry
    evaluator: CompatEvaluator | null
    metricsAuth?: boolean
  },
): void {
  const { store } = deps

  http.get('/healthz', () => ({ status: 200, body: { status: 'ok' } }), { auth: false })
  http.get(
    '/metrics',
    async () => ({
      status: 200,
      body: await deps.metrics.metrics(),
      contentType: deps.metrics.contentType,
    }),
    { auth: deps.metricsAuth ?? false },
  )

  // ?selector=rack=a,gpu in (h100,a100): Kubernetes label selector syntax over the hosts' labels
  http.get('/v1/hosts', async (req) => {
    const selector = req.query.get('selector')
    let requirements: Requirement[] = []
    try {
      requirements = parseSelector(selector ?? '')
    } catch (err) {
      if (err instanceof SelectorError) throw new HttpError(400, `bad query: selector: ${err.message}`)
      throw err
    }
    const hosts = (await store.hosts()).filter((h) => matchesSelector(h.labels, requirements))
    return { status: 200, body: { hosts: hosts.map(publicHost) } }
  })
  http.get('/v1/hosts/:hostId', async (req) => ({
    status: 200,
    body: publicHost(await knownHost(store, req.params.hostId)),
  }))

  http.get('/v1/events', async (req) => {
    const q = validate(eventsQuerySchema, Object.fromEntries(req.query), 'query')
    const events = await store.events(q)
    const next = events.length === q.limit ? events[events.length - 1].seq : null
    return { status: 200, body: { events: events.map(({ seq: _seq, ...e }) => e), next } }
  })

  http.post('/v1/hosts/:hostId/commands', async (req) => {
    const host = await knownHost(store, req.params.hostId)
    const body = validate(commandBodySchema, req.body, 'command')
    // Stored, then sent by whichever replica holds the host's connection (this one included).
    const commandId = await store.createCommand(host.hostId, body.action, body.args)
    return { status: 202, body: { commandId } }
  })

  http.get('/v1/commands', async (req) => {
    const q = validate(commandsQuerySchema, Object.fromEntries(req.query), 'query')
    return { status: 200, body: { commands: await store.commands(q) } }
  })

  http.get('/v1/commands/:commandId', async (req) => {
    const command = await store.command(req.params.commandId)
    if (!command) throw new HttpError(404, `no command ${req.params.commandId}`)
    return { status: 200, body: command }
  })

  http.post('/hooks/alertmanager', async (req: Request) => {
    const payload = validate(alertmanagerPayloadSchema, req.body, 'Alertmanager payload')
    const routing = routeAlerts(
      payload,
      (await store.hosts()).map((h) => h.hostId),
    )
    const skipped = [...routing.skipped]
    // Alertmanager repeats a firing alert (repeat_interval, retries), to any replica: a host whose
    // prune has no result yet gets no second one.
    const commands: { hostId: string; commandId: string }[] = []
    for (const hostId of routing.hostIds) {
      const outcome = await store.createCommandUnlessWaiting(hostId, 'prune', {})
      if ('waiting' in outcome) {
        skipped.push({ alertname: null, reason: `a prune for ${hostId} has no result yet: ${outcome.waiting}` })
      } else commands.push({ hostId, commandId: outcome.commandId })
    }
    return { status: 202, body: { commands, skipped } }
  })

  http.get('/v1/compat', async (req) => {
    const image = req.query.get('image')
    if (!image) throw new HttpError(400, 'bad query: image: required, e.g. ?image=nvcr.io/nvidia/pytorch:23.10-py3')
    return { status: 200, body: fleetCompat(image, await store.hosts(), deps.evaluator) }
  })
}

async function knownHost(store: FleetStore, hostId: string) {
  const host = await store.host(hostId)
  if (!host) throw new HttpError(404, `no host ${hostId}`)
  return host
}

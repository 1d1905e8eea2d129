// The coordinator's HTTP API (the admin token on every path but /healthz, and /metrics unless
// metricsAuth is off): fleet, events, commands, the Alertmanager webhook and the fleet compat query.
import { matchesSelector, parseSelector, SelectorError, type Requirement } from '../labels.js'
import { z } from 'zod'
import { HttpError, type HttpServer, type Request } from '../http/server.js'
import { COMMAND_ACTIONS } from '../protocol.js'
import { alertmanagerPayloadSchema, routeAlerts } from './alerts.js'
import { fleetCompat, type CompatEvaluator } from './compat.js'
import type { AgentHub } from './hub.js'
import { publicHost, type FleetStore } from './store.js'
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
  const { store, hub } = deps

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
  http.get('/v1/hosts', (req) => {
    const selector = req.query.get('selector')
    let requirements: Requirement[] = []
    try {
      requirements = parseSelector(selector ?? '')
    } catch (err) {
      if (err instanceof SelectorError) throw new HttpError(400, `bad query: selector: ${err.message}`)
      throw err
    }
    const hosts = store.hosts().filter((h) => matchesSelector(h.labels, requirements))
    return { status: 200, body: { hosts: hosts.map(publicHost) } }
  })
  http.get('/v1/hosts/:hostId', (req) => ({ status: 200, body: publicHost(knownHost(store, req.params.hostId)) }))

  http.get('/v1/events', (req) => {
    const q = validate(eventsQuerySchema, Object.fromEntries(req.query), 'query')
    const { events } = store.events(q)
    const next = events.length === q.limit ? events[events.length - 1].seq : null
    return { status: 200, body: { events: events.map(({ seq: _seq, ...e }) => e), next } }
  })

  http.post('/v1/hosts/:hostId/commands', async (req) => {
    const host = knownHost(store, req.params.hostId)
    const body = validate(commandBodySchema, req.body, 'command')
    const commandId = await store.write(() => store.createCommand(host.hostId, body.action, body.args))
    hub.dispatch(host.hostId)
    return { status: 202, body: { commandId } }
  })

  http.get('/v1/commands', (req) => {
    const q = validate(commandsQuerySchema, Object.fromEntries(req.query), 'query')
    return { status: 200, body: { commands: store.commands(q) } }
  })

  http.get('/v1/commands/:commandId', (req) => {
    const command = store.command(req.params.commandId)
    if (!command) throw new HttpError(404, `no command ${req.params.commandId}`)
    return { status: 200, body: command }
  })

  http.post('/hooks/alertmanager', async (req: Request) => {
    const payload = validate(alertmanagerPayloadSchema, req.body, 'Alertmanager payload')
    const routing = routeAlerts(
      payload,
      store.hosts().map((h) => h.hostId),
    )
    const skipped = [...routing.skipped]
    // Alertmanager repeats a firing alert (repeat_interval, retries): a host whose prune has no
    // result yet gets no second one.
    const commands = await store.write(() =>
      routing.hostIds.flatMap((hostId) => {
        const waiting = store.pendingCommands(hostId).find((c) => c.action === 'prune')
        if (waiting) {
          skipped.push({ alertname: null, reason: `a prune for ${hostId} has no result yet: ${waiting.commandId}` })
          return []
        }
        return [{ hostId, commandId: store.createCommand(hostId, 'prune', {}) }]
      }),
    )
    for (const { hostId } of commands) hub.dispatch(hostId)
    return { status: 202, body: { commands, skipped } }
  })

  http.get('/v1/compat', (req) => {
    const image = req.query.get('image')
    if (!image) throw new HttpError(400, 'bad query: image: required, e.g. ?image=nvcr.io/nvidia/pytorch:23.10-py3')
    return { status: 200, body: fleetCompat(image, store.hosts(), deps.evaluator) }
  })
}

function knownHost(store: FleetStore, hostId: string) {
  const host = store.host(hostId)
  if (!host) throw new HttpError(404, `no host ${hostId}`)
  return host
}

// The rollouts API: start one, list them, one with its hosts, cancel/pause/resume; and the release
// of one host's held image. Writes are POST/DELETE, so they carry the admin token like the rest.
import { z } from 'zod'
import { HttpError, type HttpServer } from '../../http/server.js'
import { labelKeySchema, parseSelector, SelectorError } from '../../labels.js'
import { describeZodIssues } from '../../validation.js'
import type { RolloutSpec } from './plan.js'
import type { Rollout } from './store.js'
import type { RolloutDriver } from './driver.js'
import { hostBytesBySource, rolloutTotals } from './totals.js'
import type { FleetStore } from '../store/fleet-store.js'
import { isImageRef, imageRefSchema } from '../../image-ref-schema.js'

const rolloutBodySchema = z.strictObject({
  images: z.array(imageRefSchema).min(1).max(100),
  selector: z.string().max(2000).default(''),
  maxParallelHosts: z.number().int().min(1).max(100_000),
  maxFailedHosts: z.number().int().min(1).nullable().default(null),
  /** ids of earlier rollouts whose holds this one replaces on the hosts it reaches */
  replaces: z.array(z.string().min(1).max(200)).max(100).default([]),
  /** hosts that serve peers hand the images to each other */
  peers: z.boolean().default(true),
  /** absent: the coordinator's rollouts.registryParallel */
  registryParallel: z.number().int().min(1).max(10_000).optional(),
  /** absent: the coordinator's rollouts.peerAffinityLabel; null: none */
  peerAffinityLabel: labelKeySchema.nullable().optional(),
  dryRun: z.boolean().default(false),
})

const listQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) })

function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value ?? {})
  if (r.success) return r.data
  throw new HttpError(400, `bad ${what}: ${describeZodIssues(r.error.issues)}`)
}

/** a rollout as the API shows it: its hosts with their bytes by source, and totals by host state and source */
export function publicRollout(r: Rollout) {
  const hosts = r.hosts.map((h) => ({ ...h, bytesBySource: hostBytesBySource(h) }))
  return { ...r, hosts, totals: rolloutTotals(r) }
}

export function addRolloutRoutes(
  http: HttpServer,
  deps: {
    store: FleetStore
    rollouts: RolloutDriver
    /** what a rollout that does not say gets (the coordinator's `rollouts` config) */
    defaults?: { registryParallel: number; peerAffinityLabel: string | null }
  },
): void {
  const { store, rollouts } = deps
  const defaults = deps.defaults ?? { registryParallel: 1, peerAffinityLabel: null }

  http.post('/v1/rollouts', async (req) => {
    const { dryRun, ...body } = validate(rolloutBodySchema, req.body, 'rollout')
    try {
      parseSelector(body.selector)
    } catch (err) {
      if (err instanceof SelectorError) throw new HttpError(400, `bad rollout: selector: ${err.message}`)
      throw err
    }
    const spec: RolloutSpec = {
      ...body,
      images: [...new Set(body.images)],
      registryParallel: body.registryParallel ?? defaults.registryParallel,
      peerAffinityLabel: body.peerAffinityLabel === undefined ? defaults.peerAffinityLabel : body.peerAffinityLabel,
    }
    if (dryRun) return { status: 200, body: { id: null, dryRun: true, ...(await rollouts.preview(spec)) } }
    const rollout = await rollouts.create(spec)
    return { status: 201, body: { id: rollout.id } }
  })

  http.get('/v1/rollouts', async (req) => {
    const { limit } = validate(listQuerySchema, Object.fromEntries(req.query), 'query')
    return { status: 200, body: { rollouts: (await store.rollouts.rollouts(limit)).map(publicRollout) } }
  })

  http.get('/v1/rollouts/:id', async (req) => {
    const rollout = await store.rollouts.rollout(req.params.id)
    if (!rollout) throw new HttpError(404, `no rollout ${req.params.id}`)
    return { status: 200, body: publicRollout(rollout) }
  })

  for (const action of ['cancel', 'pause', 'resume'] as const) {
    http.post(`/v1/rollouts/:id/${action}`, async (req) => {
      const done = await rollouts.control(req.params.id, action)
      if (!done) throw new HttpError(404, `no rollout ${req.params.id}`)
      if (!done.changed) throw new HttpError(409, `cannot ${action} a rollout that is ${done.rollout.state}`)
      return { status: 200, body: publicRollout(done.rollout) }
    })
  }

  // ?rollout=ID releases only that rollout's hold of the image
  http.delete('/v1/hosts/:hostId/wanted/:ref', async (req) => {
    const host = await store.host(req.params.hostId)
    if (!host) throw new HttpError(404, `no host ${req.params.hostId}`)
    if (!isImageRef(req.params.ref)) throw new HttpError(400, `not a valid image reference: ${req.params.ref}`)
    const rollout = req.query.get('rollout')
    const args = { ref: req.params.ref, ...(rollout ? { rollout } : {}) }
    // Sent by whichever replica holds the host's connection.
    const commandId = await store.createCommand(host.hostId, 'release', args)
    return { status: 202, body: { commandId } }
  })
}

// Alertmanager's webhook payload (version 4), the one schema for both receivers: the agent's
// POST /hooks/alertmanager and the coordinator's. Fields Alertmanager may add in later versions
// are let through (z.object strips them, not rejects).
import { z } from 'zod'
import { describeZodIssues } from '../validation.js'

const labels = z.record(z.string(), z.string())

const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels,
  annotations: labels.default({}),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1).optional(),
})

export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().min(0).optional(),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: labels.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(alertSchema).max(10_000),
})

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>
export type Alert = AlertmanagerPayload['alerts'][number]

export function parseAlertmanagerPayload(
  raw: unknown,
): { ok: true; payload: AlertmanagerPayload } | { ok: false; reason: string } {
  if (raw === undefined) return { ok: false, reason: 'empty body: expected an Alertmanager webhook payload' }
  const result = alertmanagerPayloadSchema.safeParse(raw)
  if (!result.success) return { ok: false, reason: describeZodIssues(result.error.issues) }
  return { ok: true, payload: result.data }
}

// Node labels for Kubernetes, written as a Node Feature Discovery features.d file.
import { z } from 'zod'

export const kubernetesSection = z
  .strictObject({
    nfdFeaturesFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("a Node Feature Discovery features.d file kept up to date with this host's labels; null: off"),
    labelPrefix: z
      .string()
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase DNS subdomain')
      .default('gpuhost.io')
      .describe('the prefix of those labels: a lowercase DNS subdomain NFD allows'),
  })
  .prefault({})
  .describe('node labels for Kubernetes')

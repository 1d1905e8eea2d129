// Which container engine the agent drives, and where containerd and the kubelet's config are.
import { z } from 'zod'

export const runtimeSection = z
  .strictObject({
    kind: z
      .enum(['docker', 'containerd'])
      .default('docker')
      .describe('the container engine: Docker (docker.socket) or containerd (runtime.socket)'),
    socket: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("containerd's gRPC socket; null: /run/containerd/containerd.sock"),
    namespace: z
      .string()
      .min(1)
      .default('k8s.io')
      .describe("the containerd namespace the images live in: k8s.io is the kubelet's (CRI's)"),
    kubeletConfig: z
      .string()
      .min(1)
      .default('/var/lib/kubelet/config.yaml')
      .describe(
        "the kubelet's config file, read by `gpuhost check`/`status` for its image GC thresholds; " +
          'absent is fine (no kubelet on this host)',
      ),
  })
  .prefault({})
  .describe(
    'the container engine: Docker (the docker.* keys) or containerd over its gRPC socket, in one ' +
      "namespace (k8s.io, the kubelet's). Timeouts and intervals come from docker.* for both.",
  )

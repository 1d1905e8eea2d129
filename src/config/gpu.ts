// The GPU collector: the nvidia-smi command, its timeout and interval, and memory per container.
import { z } from 'zod'
import { seconds } from './fields.js'

export const gpuSection = z
  .strictObject({
    nvidiaSmi: z.string().min(1).default('nvidia-smi').describe('the nvidia-smi command: a name on PATH, or a path'),
    timeoutSeconds: seconds.default(10).describe('an nvidia-smi run that takes longer is killed and fails'),
    intervalSeconds: seconds.default(30).describe('how often the GPU facts and metrics are read'),
    containerMemory: z
      .boolean()
      .default(true)
      .describe(
        'GPU memory per container (gpuhost_container_gpu_memory_bytes): each pid nvidia-smi lists is ' +
          "mapped to its container through /proc/PID/cgroup, so the host's processes must be visible: " +
          "systemd's ProtectProc=default (the shipped unit), a container in the host PID namespace",
      ),
  })
  .prefault({})
  .describe('the GPU collector (nvidia-smi)')

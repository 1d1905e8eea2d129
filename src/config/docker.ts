// Docker's socket, and the timeouts and intervals every runtime (Docker or containerd) is driven by.
import { z } from 'zod'
import { seconds } from './fields.js'

export const dockerSection = z
  .strictObject({
    socket: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        "the Docker Engine API's unix socket; null: where DOCKER_HOST says (unix://, tcp:// with " +
          'DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, ssh://), else /var/run/docker.sock',
      ),
    timeoutSeconds: seconds.default(30).describe('a call to the runtime with no answer for this long fails'),
    refreshIntervalSeconds: seconds
      .default(300)
      .describe('images and containers are refreshed on Docker events; this periodic run is only a safety net'),
    pingIntervalSeconds: seconds
      .default(10)
      .describe('how often Docker is pinged: its health in /v1/status and the metrics comes from this'),
    pingTimeoutSeconds: seconds
      .default(3)
      .describe(
        'a ping not answered within this long marks Docker unreachable (a frozen dockerd accepts and ' +
          'never answers)',
      ),
  })
  .prefault({})
  .describe('Docker, and the timeouts and intervals of whichever runtime runtime.kind names')

// Serving images to the other hosts of the fleet (peers.serve). Off by default; a host that does not
// serve still fetches from peers the coordinator names. Only images a rollout holds here are served.
import { readFileSync } from 'node:fs'
import type { Feature } from '../core/feature.js'
import { readTokenFile } from '../config.js'
import { PeerServer } from './server.js'

export const peersFeature: Feature = (ctx) => {
  const { config, log } = ctx
  if (!config.peers.serve) return { components: [] }
  // Peer tokens are signed with this host's link token: read again on each request so a rotated
  // token file takes effect without a restart.
  const linkToken = (): string | null => {
    try {
      return readTokenFile(config.coordinator.tokenFile)
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot read the link token: peer requests are refused')
      return null
    }
  }
  const { certFile, keyFile } = config.peers.tls
  const server = new PeerServer({
    listen: config.peers.listen,
    hostId: config.hostId,
    linkToken,
    maxUploads: config.peers.maxUploads,
    maxUploadBytesPerSecond: config.peers.maxUploadBytesPerSecond,
    runtime: ctx.runtime,
    rolloutHeld: () =>
      ctx.wanted
        .list()
        .filter((w) => w.sources.some((s) => s.startsWith('rollout:')))
        .map((w) => w.ref),
    nowSeconds: () => Math.floor(ctx.now().getTime() / 1000),
    log,
    // read at start: a renewed certificate takes effect on the next restart of the agent
    tls:
      certFile && keyFile
        ? () => ({ cert: readPem(certFile, 'peers.tls.certFile'), key: readPem(keyFile, 'peers.tls.keyFile') })
        : null,
  })
  return {
    peerStats: server.stats,
    components: [
      {
        name: 'peer-server',
        async start() {
          if (!config.coordinator.tokenFile)
            log.warn(
              'peers.serve without coordinator.tokenFile: no peer token can be checked, every request is refused',
            )
          await server.start()
          log.info({ listen: server.address(), tls: certFile !== null }, 'serving rollout images to peers')
        },
        stop: () => server.stop(),
      },
    ],
  }
}

function readPem(file: string, key: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new Error(`${key}: cannot read ${file}: ${(err as Error).message}`)
  }
}

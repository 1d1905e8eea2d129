// Hosts of the fleet serving each other images: the peer listener, its limits and its TLS.
import { z } from 'zod'
import { isBaseUrl } from '../validation.js'
import { hostPort } from './fields.js'

export const peersSection = z
  .strictObject({
    serve: z
      .boolean()
      .default(false)
      .describe('serve the images rollouts hold here to other hosts of the fleet (GET /v1/images/{id}/export)'),
    listen: hostPort
      .default('0.0.0.0:9479')
      .describe("the peer listener's own address: apart from the API, so it can face the fleet network alone"),
    advertiseUrl: z
      .url({ protocol: /^https?$/ })
      .max(2000)
      .refine((u) => isBaseUrl(u), { message: 'must be http(s)://HOST:PORT, without path or query' })
      .nullable()
      .default(null)
      .describe(
        'the URL other hosts reach the peer listener at, told to the coordinator (http://10.0.3.7:9479); ' +
          'null: http://LISTEN when `listen` names one address. A wildcard listen (0.0.0.0, ::) says ' +
          'nothing about which address the fleet can reach, so such a host is not named as a source ' +
          'until this is set.',
      ),
    maxUploads: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe(
        'image exports streamed at once; one more answers 503 (Retry-After 5): the fetcher tries its ' +
          'next source, then asks again, 3 times at most',
      ),
    maxUploadBytesPerSecond: z
      .number()
      .int()
      .min(1024)
      .nullable()
      .default(null)
      .describe('all uploads together at most this many bytes per second; null: no limit'),
    allowLoopback: z
      .boolean()
      .default(false)
      .describe(
        'fetch from peers whose address is loopback (127.0.0.0/8, ::1): only for a fleet on one ' +
          'machine. Off, a peer URL naming or resolving to loopback is refused before anything is sent, ' +
          'as link-local, unspecified, multicast and broadcast addresses always are',
      ),
    tls: z
      .strictObject({
        certFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("the peer listener's certificate (PEM); with keyFile it serves https (read at start)"),
        keyFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('the private key (PEM) of certFile; set both or neither'),
        caFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            'the fleet CA https:// peers are checked against when fetching (read per fetch); null: the system CAs',
          ),
      })
      .refine((t) => (t.certFile === null) === (t.keyFile === null), {
        message: 'certFile and keyFile go together',
        path: ['keyFile'],
      })
      .prefault({})
      .describe(
        'peer tokens travel in a header: https for the listener (certFile and keyFile, read at start), ' +
          'and the fleet CA this host trusts when it fetches from an https:// peer (caFile, read per ' +
          'fetch; null: the system CAs)',
      ),
  })
  .refine((p) => p.advertiseUrl === null || p.advertiseUrl.startsWith('https:') === (p.tls.certFile !== null), {
    message: 'must be https:// exactly when peers.tls serves https (certFile)',
    path: ['advertiseUrl'],
  })
  .prefault({})
  .describe('hosts of the fleet serving each other the images rollouts hold')

// The agent's HTTP API: how long a body may take, and which Host: names it answers.
import { z } from 'zod'
import { seconds } from './fields.js'

export const httpSection = z
  .strictObject({
    bodyTimeoutSeconds: seconds
      .default(10)
      .describe('a request whose body has not fully arrived this long after its headers is cut (408)'),
    allowedHosts: z
      .array(
        z
          .string()
          .regex(/^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'a host name, or .domain')
          // `.com` would let any name under a public suffix through: a domain has two labels at least
          .refine((h) => !/^\.[^.]+\.?$/.test(h), 'a .domain needs two labels at least (.dc.example, not .com)'),
      )
      .max(256)
      .default([])
      .describe(
        "names a request's `Host:` may carry besides an IP address, localhost, this machine's " +
          "hostname and the listen address's name (`.example.com`: that domain and every name under " +
          'it; a domain you control, two labels at least); any other answers 421, so a page using DNS ' +
          'rebinding cannot read the API from a browser',
      ),
  })
  .prefault({})
  .describe("the agent's HTTP API")

// What a hello's peer listener is stored as.
import type { Logger } from 'pino'
import type { Hello } from '../../protocol.js'
import { acceptPeerAdvert } from '../peer-advert.js'
import type { Session } from './session.js'

/**
 * The hello as stored: its advertised peer listener kept only when its address is acceptable
 * (peer-advert.ts), with the credential the host checks grants with.
 */
export function withPeerAdvert(session: Session, hello: Hello, log: Logger): Hello {
  if (!hello.facts.peers) return hello
  const { peers, refused } = acceptPeerAdvert(hello.facts.peers, {
    remoteAddress: session.remoteAddress,
    sharedCredential: session.credentialHostId === null,
  })
  if (refused) {
    const { url } = hello.facts.peers
    log.warn({ hostId: hello.hostId, url, why: refused }, 'refused the peer URL a host advertised')
  }
  return { ...hello, facts: { ...hello.facts, peers: peers ?? undefined } }
}

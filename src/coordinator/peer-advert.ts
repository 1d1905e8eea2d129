// What the coordinator keeps of a host's advertised peer listener (its hello's `facts.peers`), decided
// when the hello arrives. Pure: the hub passes the connection's remote address and credential.

import type { PeerServing } from '../protocol.js'

/** which credential the host authenticated with: grants it is to check are signed with the same one */
export type PeerGrantKey = 'host' | 'shared'

/** the advertised listener as stored: what the host said, and the credential it checks grants with */
export interface StoredPeerServing extends PeerServing {
  /** absent in rows stored before it was kept: signed by the coordinator's auth mode then */
  key?: PeerGrantKey
}

export function acceptPeerAdvert(
  peers: PeerServing | undefined,
  conn: { remoteAddress: string | null; sharedCredential: boolean },
): { peers: StoredPeerServing | null; refused: string | null } {
  if (!peers) return { peers: null, refused: null }
  return { peers: { ...peers, key: conn.sharedCredential ? 'shared' : 'host' }, refused: null }
}

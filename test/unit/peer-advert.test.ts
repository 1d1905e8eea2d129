import t from 'tap'
import { acceptPeerAdvert } from '../../src/coordinator/peer-advert.js'

const advert = (url: string) => ({ url, maxUploads: 2 })
const from = (remoteAddress: string | null, sharedCredential = false) => ({ remoteAddress, sharedCredential })

t.test('the credential the host connected with is kept: its grants are signed with it', async (t) => {
  t.same(acceptPeerAdvert(advert('http://gpu-1.fleet:9479'), from('10.0.0.1')), {
    peers: { url: 'http://gpu-1.fleet:9479', maxUploads: 2, key: 'host' },
    refused: null,
  })
  t.match(acceptPeerAdvert(advert('http://gpu-1.fleet:9479'), from('10.0.0.1', true)), { peers: { key: 'shared' } })
  t.same(acceptPeerAdvert(undefined, from('10.0.0.1')), { peers: null, refused: null }, 'a host that does not serve')
})

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

t.test('an IP literal only when it is the address the hello came from', async (t) => {
  t.match(acceptPeerAdvert(advert('http://127.0.0.1:9479'), from('127.0.0.1')), { peers: { url: /127/ } })
  t.match(acceptPeerAdvert(advert('http://10.0.0.7:9479'), from('::ffff:10.0.0.7')), { refused: null }, 'IPv4-mapped')
  t.match(acceptPeerAdvert(advert('http://[fd00::0:7]:9479'), from('fd00::7')), { refused: null }, 'IPv6 spellings')
  for (const [url, remote] of [
    ['http://10.0.0.8:9479', '10.0.0.7'],
    ['http://[fd00::8]:9479', 'fd00::7'],
    ['http://10.0.0.7:9479', 'fd00::7'],
    ['http://10.0.0.7:9479', null],
  ] as const) {
    t.match(
      acceptPeerAdvert(advert(url), from(remote)),
      { peers: null, refused: /not the address/ },
      `${url} ${remote}`,
    )
  }
})

t.test('link-local and unspecified addresses never, even from that address', async (t) => {
  for (const host of ['169.254.169.254', '0.0.0.0', '[fe80::1]', '[::]', '[febf::1]']) {
    const remote = host.replace(/^\[(.*)\]$/, '$1')
    t.match(acceptPeerAdvert(advert(`http://${host}:80`), from(remote)), { peers: null, refused: /link-local/ }, host)
  }
  t.match(acceptPeerAdvert(advert('http://[fec0::1]:80'), from('fec0::1')), { refused: null }, 'just past fe80::/10')
})

t.test('localhost and the names under it never, from any address', async (t) => {
  const names = ['localhost', 'LOCALHOST', 'localhost.', 'gpu-1.localhost', 'a.b.LocalHost.', '%6cocalhost']
  for (const name of names) {
    for (const remote of ['127.0.0.1', '::1', '10.0.0.7', null]) {
      t.match(
        acceptPeerAdvert(advert(`http://${name}:9477`), from(remote)),
        { peers: null, refused: /own loopback/ },
        `${name} from ${remote}`,
      )
    }
  }
  for (const name of ['localhost.fleet.example', 'notlocalhost', 'localhost-1.fleet']) {
    t.match(acceptPeerAdvert(advert(`http://${name}:9477`), from('10.0.0.7')), { refused: null }, `${name} is kept`)
  }
})

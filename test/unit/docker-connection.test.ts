import t from 'tap'
import { compareApiVersions, negotiateApiVersion } from '../../src/runtime/docker-connection.js'

t.test('the API version is the lower of the daemon and the client', async (t) => {
  t.equal(negotiateApiVersion('1.41'), '1.41', 'Docker 20.10')
  t.equal(negotiateApiVersion('1.47'), '1.43', 'a newer daemon is spoken to in the version the client knows')
  t.ok(compareApiVersions('1.9', '1.41') < 0, '1.9 is older than 1.41: compared as numbers, not text')
  t.equal(compareApiVersions('1.41', '1.41'), 0)
  t.throws(() => negotiateApiVersion('1.12'), /needs 1\.25 or newer/)
  t.throws(() => negotiateApiVersion('v1'), /unreadable API version/)
})

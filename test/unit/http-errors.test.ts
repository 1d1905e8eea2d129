// Domain errors carry no HTTP status; the server maps them: a malformed request answers 400,
// something unavailable now 503, and anything else is a bug that answers 500 and is logged.
import t from 'tap'
import { pino } from 'pino'
import { HttpServer } from '../../src/http/server.js'
import { InvalidRequestError, UnavailableError } from '../../src/errors.js'
import { UnknownActionError } from '../../src/core/actions.js'

t.test('domain errors map to 400 and 503', async (t) => {
  const http = new HttpServer({
    listen: '127.0.0.1:0',
    token: () => null,
    log: pino({ level: 'silent' }),
    maxBodyBytes: 1024,
  })
  http.get('/invalid', () => {
    throw new InvalidRequestError('bad prune request: dryRun: expected boolean')
  })
  http.get('/unknown', () => {
    throw new UnknownActionError('rollout', ['prune', 'status'])
  })
  http.get('/unavailable', () => {
    throw new UnavailableError('the agent is stopping: no new prune')
  })
  http.get('/bug', () => {
    throw new TypeError('x is undefined')
  })
  await http.start()
  t.teardown(() => http.stop())
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${http.port()}${path}`)
    return { status: res.status, body: await res.json() }
  }
  t.same(await get('/invalid'), { status: 400, body: { error: 'bad prune request: dryRun: expected boolean' } })
  t.same(await get('/unknown'), { status: 400, body: { error: 'unknown action rollout; known: prune, status' } })
  t.same(await get('/unavailable'), { status: 503, body: { error: 'the agent is stopping: no new prune' } })
  t.equal((await get('/bug')).status, 500)
})

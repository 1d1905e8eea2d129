// NVIDIA's requirement language as libnvidia-container evaluates `--require` (src/cli/dsl.c and
// the rules in src/cli/configure.c): the fine points, one by one.
import t, { type Test } from 'tap'
import { compareVersions } from '../../src/compat/version.js'
import {
  evaluateRequirement,
  RequirementError,
  type DeviceFacts,
  type DriverFacts,
} from '../../src/compat/requirement.js'

const tesla470: DriverFacts = { driverVersion: '470.82.01', cudaVersion: '11.4' }
const TESLA: DeviceFacts = { brand: 'tesla', arch: '7.5' }
const GEFORCE: DeviceFacts = { brand: 'geforce', arch: '8.6' }
const holds = (expr: string, driver: DriverFacts = tesla470, device: DeviceFacts | null = TESLA) =>
  evaluateRequirement(expr, driver, device).satisfied
const invalid = (
  t: Test,
  expr: string,
  reason: RegExp,
  driver: DriverFacts = tesla470,
  device: DeviceFacts | null = TESLA,
) => {
  t.throws(() => evaluateRequirement(expr, driver, device), RequirementError, expr)
  try {
    evaluateRequirement(expr, driver, device)
  } catch (err) {
    t.match((err as RequirementError).reason, reason, `${expr}: reason`)
  }
}

t.test('versions compare per numeric component, trailing zeros ignored', async (t) => {
  const cases: [string, '=' | '!=' | '<' | '<=' | '>' | '>=', string, boolean][] = [
    ['470.82.01', '>=', '470', true],
    ['470.82.01', '<', '471', true],
    ['470.82.01', '=', '470', false],
    ['11.4', '>=', '11.10', false],
    ['11.10', '>', '11.9', true],
    ['12.0', '=', '12', true],
    ['12', '=', '12.0.0', true],
    ['12.0.1', '>', '12', true],
    ['12', '<', '12.0.1', true],
    ['535.104.05', '>', '535.54.03', true],
    ['535.104.05', '>=', '535.104.5', true],
    ['535.104.05', '=', '535.104.5', true],
    ['11.8', '!=', '11.8.0', false],
    ['11.8', '!=', '11.9', true],
    ['11.08', '=', '11.8', true],
    ['11.', '=', '11', true],
    ['8.0', '<=', '8', true],
    ['10.0.5', '>', '10.0.10', false],
  ]
  for (const [a, op, b, want] of cases) t.equal(compareVersions(a, op, b), want, `${a} ${op} ${b}`)
  for (const [a, b] of [
    ['11.x', '11'],
    ['11', 'v11'],
    ['.5', '1'],
    ['11', '1-2'],
    ['1', '18446744073709551615'],
    ['1', ' 1'],
  ]) {
    t.equal(compareVersions(a, '>=', b), null, `${a} vs ${b} is invalid`)
  }
  t.equal(compareVersions('1', '>=', '18446744073709551614'), false, 'the largest component the runtime still reads')
})

t.test('space is OR, comma is AND, empty pieces are skipped', async (t) => {
  t.ok(holds('cuda>=11.4'))
  t.notOk(holds('cuda>=11.5'))
  t.ok(holds('cuda>=11.5 driver>=470'), 'second alternative')
  t.notOk(holds('cuda>=11.5 driver>=470,driver<470'), 'both conditions of the alternative must hold')
  t.ok(holds('cuda>=11.5  ,,brand=tesla,,driver>=470,'), 'extra spaces and commas')
  t.ok(holds(''), 'an empty requirement holds')
  t.ok(holds('   '), 'so does one of spaces')
  t.equal(
    evaluateRequirement('cuda>=11.5 brand=tesla,driver>=470,driver<471', tesla470, TESLA).matched,
    'brand=tesla,driver>=470,driver<471',
  )
  t.equal(
    evaluateRequirement('cuda>=11.0 brand=tesla', tesla470, TESLA).matched,
    'cuda>=11.0',
    'the first alternative that holds',
  )
})

t.test("the runtime's quirk: an alternative of only commas keeps the previous result", async (t) => {
  t.notOk(holds('cuda>=12 ,'), 'after a failed alternative, "," does not rescue it')
  t.ok(holds(', cuda>=12'), 'before any failure it holds')
})

t.test('keys and brand values compare without regard to case', async (t) => {
  t.ok(holds('CUDA>=11.4'))
  t.ok(holds('Brand=Tesla'))
  t.ok(holds('brand=TESLA', tesla470, { brand: 'tesla' }))
  t.notOk(holds('brand=tesla', tesla470, GEFORCE))
  t.ok(holds('brand!=tesla', tesla470, GEFORCE))
})

t.test('arch compares as a version', async (t) => {
  t.ok(holds('arch>=7.0'))
  t.notOk(holds('arch>=8.0'))
  t.ok(holds('arch=7.5'))
})

t.test('operators: = != < <= > >=, and a lone "!" read as "!="', async (t) => {
  t.ok(holds('driver=470.82.01'))
  t.ok(holds('driver!=470'))
  t.ok(holds('driver!470'), '"!" matches "!=" by prefix in the runtime')
  t.notOk(holds('driver!470.82.01'))
  t.ok(holds('driver>470'))
  t.ok(holds('driver<=470.82.1'))
  invalid(t, 'driver=<470', /unknown operator "=<"/)
  invalid(t, 'driver==470', /unknown operator "=="/)
  invalid(t, 'driver=>470', /unknown operator "=>"/)
  invalid(t, 'driver<>470', /unknown operator "<>"/)
  invalid(t, 'driver>>470', /unknown operator ">>"/)
})

t.test('what the runtime calls an invalid expression', async (t) => {
  invalid(t, 'cuda', /no operator/)
  invalid(t, '>=11', /no key/)
  invalid(t, 'cuda>=', /no value/)
  invalid(t, 'gpu>=1', /unknown key "gpu"/)
  invalid(t, 'cuda>=11.x', /not a version/)
  invalid(t, 'driver>=470-beta', /not a version/)
  invalid(t, 'cuda>=v11', /not a version/)
  invalid(t, 'brand>=tesla', /only with = or !=/)
  invalid(t, 'brand<tesla', /only with = or !=/)
  invalid(t, `cuda>=99 brand=${'x'.repeat(130)}`, /too long/)
  t.ok(holds(`brand=${'x'.repeat(130)} cuda>=1`, tesla470, null), 'a long condition that holds is fine')
})

t.test('evaluation stops early, so a malformed condition after it is never seen', async (t) => {
  t.ok(holds('cuda>=11.0 nonsense'), 'the first alternative held')
  t.notOk(holds('cuda>=99,nonsense'), 'the first condition failed')
  invalid(t, 'cuda>=99 nonsense', /no operator/)
})

t.test('with no GPU visible, brand and arch conditions hold, as the runtime skips them', async (t) => {
  t.ok(holds('brand=tesla,arch>=9.0', tesla470, null), 'no device: brand and arch hold')
  t.ok(holds('brand<tesla', tesla470, null), 'not even validated without a device')
})

t.test('a fact the runtime knows but this host does not is unknown, never a silent yes', async (t) => {
  const unknown = (expr: string, driver: DriverFacts, device: DeviceFacts | null) =>
    evaluateRequirement(expr, driver, device)
  t.match(unknown('brand=tesla', tesla470, { arch: '8.0' }), {
    satisfied: null,
    unknown: ["brand=tesla (the GPU's brand is unknown)"],
  })
  t.match(unknown('arch>=9.0', tesla470, { brand: 'tesla' }), {
    satisfied: null,
    unknown: ["arch>=9.0 (the GPU's compute capability is unknown)"],
  })
  t.match(unknown('cuda>=99', { driverVersion: '470.82.01' }, TESLA), {
    satisfied: null,
    unknown: [/CUDA version is unknown/],
  })
  t.match(unknown('driver>=999', { cudaVersion: '11.4' }, TESLA), {
    satisfied: null,
    unknown: [/driver version is unknown/],
  })
  const noCuda = { driverVersion: '330.20' }
  t.equal(
    holds('cuda>=12.4 driver>=300', noCuda, TESLA),
    true,
    'an unknown alternative before one that holds: yes either way',
  )
  t.equal(holds('cuda>=12.4,driver>=999', noCuda, TESLA), false, 'unknown AND false is false')
  t.equal(holds('cuda>=12.4 driver>=999', noCuda, TESLA), null, 'unknown OR false is unknown')
  t.equal(holds('driver>=999 ,', noCuda, TESLA), false, 'the quirk keeps a failure')
  t.equal(holds('cuda>=12.4 ,', noCuda, TESLA), null, 'and an unknown')
  t.equal(holds('arch>=9.0', tesla470, { brand: 'tesla', arch: '8.0' }), false, 'a known capability decides')
})

t.test('a malformed condition the runtime may not reach is unknown; one it surely reaches is invalid', async (t) => {
  const noCuda = { driverVersion: '330.20' }
  t.match(evaluateRequirement('cuda>=12.4,nonsense', noCuda, TESLA), {
    satisfied: null,
    unknown: [/cuda>=12\.4/, /nonsense \(the runtime may reject it/],
  })
  t.match(evaluateRequirement('cuda>=12.4 nonsense', noCuda, TESLA), { satisfied: null })
  invalid(t, 'driver>=999 nonsense', /no operator/, noCuda)
  invalid(t, 'cuda>=twelve', /not a version/, noCuda)
})

t.test("the runtime's message names the first alternative", async (t) => {
  const r = evaluateRequirement('cuda>=11.8 brand=tesla,driver>=470,driver<471', tesla470, GEFORCE)
  t.equal(r.satisfied, false)
  t.equal(
    r.message,
    'unsatisfied condition: cuda>=11.8, please update your driver to a newer version, or use an earlier cuda container',
  )
  t.equal(r.failed, 'cuda>=11.8')
  t.equal(r.alternativesFailed, 2)
  t.equal(evaluateRequirement('brand=tesla', tesla470, GEFORCE).message, 'unsatisfied condition: brand=tesla')
})

t.test('forward compatibility: cuda>=11.8 brand=tesla,driver>=470,driver<471', async (t) => {
  const expr = 'cuda>=11.8 brand=tesla,driver>=470,driver<471'
  t.ok(holds(expr, tesla470, { brand: 'tesla' }), 'Tesla on 470.82.01 runs it')
  t.notOk(holds(expr, tesla470, { brand: 'geforce' }), 'GeForce on 470.82.01 does not')
  t.notOk(holds(expr, { driverVersion: '510.47.03', cudaVersion: '11.6' }, { brand: 'tesla' }), 'Tesla on 510 does not')
  t.ok(
    holds(expr, { driverVersion: '520.61.05', cudaVersion: '11.8' }, { brand: 'geforce' }),
    'any GPU on a CUDA 11.8 driver',
  )
})

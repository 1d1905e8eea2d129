import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  checkKubeletGc,
  kubeletRaces,
  parseGoDuration,
  parseKubeletGc,
  KUBELET_GC_DEFAULTS,
} from '../../src/prune/kubelet-gc.js'

const pinned = { highPercent: 80, lowPercent: 70, maxUnusedSeconds: null, pinsPrewarmed: true }

t.test('Go durations', async (t) => {
  t.equal(parseGoDuration('2m0s'), 120)
  t.equal(parseGoDuration('168h'), 168 * 3600)
  t.equal(parseGoDuration('1h30m'), 5400)
  t.equal(parseGoDuration('0s'), 0)
  t.equal(parseGoDuration('0'), 0)
  t.equal(parseGoDuration('1.5h'), 5400)
  t.equal(parseGoDuration('two minutes'), null)
  t.equal(parseGoDuration('5'), null, 'a number without a unit is not a Go duration')
  t.equal(parseGoDuration(''), null)
})

t.test('a kubelet config: the four settings, defaults for the rest, clear errors', async (t) => {
  t.same(
    parseKubeletGc(
      [
        'apiVersion: kubelet.config.k8s.io/v1beta1',
        'kind: KubeletConfiguration',
        'imageGCHighThresholdPercent: 90',
        'imageGCLowThresholdPercent: 75',
        'imageMinimumGCAge: 5m0s',
        'imageMaximumGCAge: 168h',
      ].join('\n'),
    ),
    { highPercent: 90, lowPercent: 75, minimumAgeSeconds: 300, maximumAgeSeconds: 168 * 3600 },
  )
  t.same(parseKubeletGc('kind: KubeletConfiguration\n'), KUBELET_GC_DEFAULTS, 'absent keys: the kubelet defaults')
  t.same(parseKubeletGc(''), KUBELET_GC_DEFAULTS, 'an empty file: the defaults')
  t.throws(() => parseKubeletGc('imageGCHighThresholdPercent: 120'), /imageGCHighThresholdPercent must be an integer/)
  t.throws(() => parseKubeletGc('imageGCHighThresholdPercent: "85"'), /must be an integer/)
  t.throws(() => parseKubeletGc('imageMinimumGCAge: 120'), /imageMinimumGCAge must be a duration/)
  t.throws(() => parseKubeletGc('- a\n- b\n'), /not a YAML mapping/)
  t.throws(() => parseKubeletGc('a: [unclosed'))
})

t.test('races', async (t) => {
  t.same(kubeletRaces(KUBELET_GC_DEFAULTS, pinned), [], 'gpuhost below the kubelet, images pinned: no race')
  const high = kubeletRaces(KUBELET_GC_DEFAULTS, { ...pinned, highPercent: 85 })
  t.equal(high.length, 1)
  t.match(high[0], /prune\.highPercent 85 is not below the kubelet's imageGCHighThresholdPercent 85/)
  t.match(
    kubeletRaces(KUBELET_GC_DEFAULTS, { ...pinned, pinsPrewarmed: false }).join('\n'),
    /does not pin prewarmed images/,
  )
  t.same(
    kubeletRaces({ ...KUBELET_GC_DEFAULTS, highPercent: 100 }, { ...pinned, highPercent: 95, pinsPrewarmed: false }),
    [],
    'a kubelet with threshold GC off (100) and no maximum age races nothing',
  )
  const maxAge = { ...KUBELET_GC_DEFAULTS, maximumAgeSeconds: 7 * 86400 }
  t.match(
    kubeletRaces(maxAge, pinned).join('\n'),
    /imageMaximumGCAge \(604800 s\), before prune\.maxUnusedSeconds \(off\)/,
  )
  t.same(kubeletRaces(maxAge, { ...pinned, maxUnusedSeconds: 86400 }), [], 'gpuhost ages images out first')
  t.match(kubeletRaces(maxAge, { ...pinned, pinsPrewarmed: false }).join('\n'), /prewarmed images included/)
})

t.test('the file: absent is no kubelet; unreadable or bad says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-kubelet-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.same(checkKubeletGc(join(dir, 'none.yaml'), pinned), { path: join(dir, 'none.yaml'), found: false, warnings: [] })
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'imageGCLowThresholdPercent: -1\n')
  const r = checkKubeletGc(bad, pinned)
  t.equal(r.found, true)
  t.match(r.warnings[0], /imageGCLowThresholdPercent must be an integer/)
  const good = join(dir, 'config.yaml')
  writeFileSync(good, 'imageGCHighThresholdPercent: 80\nimageGCLowThresholdPercent: 70\n')
  const g = checkKubeletGc(good, pinned)
  t.match(g, { found: true, thresholds: { highPercent: 80, lowPercent: 70 } })
  t.match(g.warnings.join('\n'), /prune\.highPercent 80 is not below/)
})

// Kernel coverage against NVIDIA's documented compatibility rules (CUDA C++ Programming Guide,
// "Binary Compatibility" and "PTX Compatibility"): a cubin for sm_XY runs on X.Z with Z >= Y (same
// major); PTX for compute_XY is JIT-compiled for any X'.Y' >= X.Y; an sm_XYa cubin runs on X.Y only.
// TORCH_CUDA_ARCH_LIST as PyTorch reads it (torch.utils.cpp_extension.cuda_arch_flags).
import t from 'tap'
import { kernelCoverage, parseArchList, targetRunsOn } from '../../src/compat/kernels.js'

const on = (list: string, ...ccs: string[]) =>
  kernelCoverage(
    { TORCH_CUDA_ARCH_LIST: list },
    ccs.map((cc, i) => ({ label: `GPU ${i}`, computeCapability: cc })),
  )

t.test('cubins run on the same major with an equal or higher minor', async (t) => {
  t.equal(on('7.0 7.5', '8.0').kernels, 'missing', 'no sm_8x cubin and no PTX: an A100 has no kernel')
  t.equal(on('7.0 7.5+PTX', '8.0').kernels, 'ok', 'PTX for compute_75 is JIT-compiled for 8.0')
  t.equal(on('8.0', '8.6').kernels, 'ok', 'sm_80 runs on 8.6')
  t.equal(on('8.6', '8.0').kernels, 'missing', 'sm_86 does not run on 8.0')
  t.equal(on('8.0 8.6', '8.9').kernels, 'ok', 'sm_86 runs on 8.9 (Ada)')
  t.equal(on('8.0 8.6', '9.0').kernels, 'missing', 'no cubin crosses a major version')
  t.equal(on('8.0 8.6 9.0+PTX', '10.0').kernels, 'ok', 'compute_90 PTX JIT-compiles for Blackwell')
  t.equal(on('9.0+PTX', '8.9').kernels, 'missing', 'PTX does not run on a lower capability')
})

t.test('architecture-specific and named targets', async (t) => {
  t.equal(on('9.0a', '9.0').kernels, 'ok')
  t.equal(on('9.0a', '9.1').kernels, 'missing', 'sm_90a runs on 9.0 only')
  t.equal(on('Ampere', '8.6').kernels, 'ok', 'Ampere is 8.0;8.6+PTX')
  t.equal(on('Ampere', '9.0').kernels, 'ok', 'through its PTX')
  t.equal(on('Volta;Turing', '7.5').kernels, 'ok', 'semicolons separate too')
  t.equal(on('Pascal', '7.0').kernels, 'ok', 'Pascal is 6.0;6.1+PTX')
  t.equal(on('Kepler+Tesla', '5.0').kernels, 'missing', 'Kepler+Tesla is 3.7, no PTX')
  t.same(parseArchList('7.5+PTX'), [
    { major: 7, minor: 5, ptx: false, specific: false },
    { major: 7, minor: 5, ptx: true, specific: false },
  ])
  t.notOk(targetRunsOn({ major: 8, minor: 0, ptx: false, specific: false }, { major: 7, minor: 5 }))
})

t.test('every GPU counts; unknown where nothing can be known', async (t) => {
  const mixed = on('7.5', '7.5', '8.6')
  t.match(mixed, { kernels: 'missing', missingOnEveryGpu: false, reason: /GPU 1 \(compute capability 8\.6\)/ })
  t.match(on('7.0', '8.0', '8.6'), { kernels: 'missing', missingOnEveryGpu: true })
  t.match(kernelCoverage({}, [{ label: 'GPU 0', computeCapability: '8.0' }]), {
    kernels: 'unknown',
    reason: /declares no TORCH_CUDA_ARCH_LIST/,
  })
  t.match(on('8.0 sm_90', '8.0'), { kernels: 'unknown', reason: /"sm_90" is not an architecture/ })
  t.match(on('', '8.0'), { kernels: 'unknown', reason: /empty/ })
  t.match(kernelCoverage({ TORCH_CUDA_ARCH_LIST: '8.0' }, [{ label: 'GPU 0' }]), {
    kernels: 'unknown',
    reason: /GPU 0 is unknown/,
  })
  t.match(
    kernelCoverage({ TORCH_CUDA_ARCH_LIST: '8.0' }, [{ label: 'GPU 0' }, { label: 'GPU 1', computeCapability: '7.5' }]),
    { kernels: 'missing', missingOnEveryGpu: false },
    'a known miss is reported even when another GPU is unknown',
  )
  t.match(kernelCoverage({ TORCH_CUDA_ARCH_LIST: '8.0' }, []), { kernels: 'unknown', reason: 'no GPU visible' })
})

// CUDA toolkit release → minimum driver, from NVIDIA's CUDA Toolkit Release Notes, Table 3
// "CUDA Toolkit and Corresponding Driver Versions" (docs.nvidia.com/cuda/cuda-toolkit-release-notes/,
// page as of CUDA 13.2 Update 2). The 13.3.0 row is not on that page: its Linux minimum is the driver
// bundled in the runfile cuda_13.3.0_610.43.02_linux.run. From 13.0 NVIDIA lists no Windows driver.
// The rows before 10.0 are from the same table as the CUDA 11.0 Release Notes print it (Table 2 "CUDA
// Toolkit and Compatible Driver Versions", docs.nvidia.com/cuda/archive/11.0/cuda-toolkit-release-notes/),
// which still went back to CUDA 7.0 (driver 346.46); later pages dropped them. A driver older than
// 346.46 has no CUDA version here: a `cuda` condition on it is unknown, not satisfied.
// The CUDA version a driver supports is the newest release whose minimum it meets; that is what
// nvidia-smi prints as "CUDA Version" and what `cuda` means in NVIDIA_REQUIRE_CUDA.
import { compareVersions, isVersion } from './version.js'

export interface ToolkitRelease {
  /** as NVIDIA names it, e.g. "12.2 Update 2" */
  release: string
  /** major.minor, e.g. "12.2" */
  cuda: string
  linuxMinDriver: string
  /** null where NVIDIA lists none */
  windowsMinDriver: string | null
}

/** newest first */
export const CUDA_TOOLKIT_DRIVERS: readonly ToolkitRelease[] = [
  { release: '13.3.0', cuda: '13.3', linuxMinDriver: '610.43.02', windowsMinDriver: null },
  { release: '13.2 Update 2', cuda: '13.2', linuxMinDriver: '595.71.05', windowsMinDriver: null },
  { release: '13.2 Update 1', cuda: '13.2', linuxMinDriver: '595.58.03', windowsMinDriver: null },
  { release: '13.2 GA', cuda: '13.2', linuxMinDriver: '595.45.04', windowsMinDriver: null },
  { release: '13.1 Update 1', cuda: '13.1', linuxMinDriver: '590.48.01', windowsMinDriver: null },
  { release: '13.1 GA', cuda: '13.1', linuxMinDriver: '590.44.01', windowsMinDriver: null },
  { release: '13.0 Update 2', cuda: '13.0', linuxMinDriver: '580.95.05', windowsMinDriver: null },
  { release: '13.0 Update 1', cuda: '13.0', linuxMinDriver: '580.82.07', windowsMinDriver: null },
  { release: '13.0 GA', cuda: '13.0', linuxMinDriver: '580.65.06', windowsMinDriver: null },
  { release: '12.9 Update 1', cuda: '12.9', linuxMinDriver: '575.57.08', windowsMinDriver: '576.57' },
  { release: '12.9 GA', cuda: '12.9', linuxMinDriver: '575.51.03', windowsMinDriver: '576.02' },
  { release: '12.8 Update 1', cuda: '12.8', linuxMinDriver: '570.124.06', windowsMinDriver: '572.61' },
  { release: '12.8 GA', cuda: '12.8', linuxMinDriver: '570.26', windowsMinDriver: '570.65' },
  { release: '12.6 Update 3', cuda: '12.6', linuxMinDriver: '560.35.05', windowsMinDriver: '561.17' },
  { release: '12.6 Update 2', cuda: '12.6', linuxMinDriver: '560.35.03', windowsMinDriver: '560.94' },
  { release: '12.6 Update 1', cuda: '12.6', linuxMinDriver: '560.35.03', windowsMinDriver: '560.94' },
  { release: '12.6 GA', cuda: '12.6', linuxMinDriver: '560.28.03', windowsMinDriver: '560.76' },
  { release: '12.5 Update 1', cuda: '12.5', linuxMinDriver: '555.42.06', windowsMinDriver: '555.85' },
  { release: '12.5 GA', cuda: '12.5', linuxMinDriver: '555.42.02', windowsMinDriver: '555.85' },
  { release: '12.4 Update 1', cuda: '12.4', linuxMinDriver: '550.54.15', windowsMinDriver: '551.78' },
  { release: '12.4 GA', cuda: '12.4', linuxMinDriver: '550.54.14', windowsMinDriver: '551.61' },
  { release: '12.3 Update 1', cuda: '12.3', linuxMinDriver: '545.23.08', windowsMinDriver: '546.12' },
  { release: '12.3 GA', cuda: '12.3', linuxMinDriver: '545.23.06', windowsMinDriver: '545.84' },
  { release: '12.2 Update 2', cuda: '12.2', linuxMinDriver: '535.104.05', windowsMinDriver: '537.13' },
  { release: '12.2 Update 1', cuda: '12.2', linuxMinDriver: '535.86.09', windowsMinDriver: '536.67' },
  { release: '12.2 GA', cuda: '12.2', linuxMinDriver: '535.54.03', windowsMinDriver: '536.25' },
  { release: '12.1 Update 1', cuda: '12.1', linuxMinDriver: '530.30.02', windowsMinDriver: '531.14' },
  { release: '12.1 GA', cuda: '12.1', linuxMinDriver: '530.30.02', windowsMinDriver: '531.14' },
  { release: '12.0 Update 1', cuda: '12.0', linuxMinDriver: '525.85.12', windowsMinDriver: '528.33' },
  { release: '12.0 GA', cuda: '12.0', linuxMinDriver: '525.60.13', windowsMinDriver: '527.41' },
  { release: '11.8 GA', cuda: '11.8', linuxMinDriver: '520.61.05', windowsMinDriver: '520.06' },
  { release: '11.7 Update 1', cuda: '11.7', linuxMinDriver: '515.48.07', windowsMinDriver: '516.31' },
  { release: '11.7 GA', cuda: '11.7', linuxMinDriver: '515.43.04', windowsMinDriver: '516.01' },
  { release: '11.6 Update 2', cuda: '11.6', linuxMinDriver: '510.47.03', windowsMinDriver: '511.65' },
  { release: '11.6 Update 1', cuda: '11.6', linuxMinDriver: '510.47.03', windowsMinDriver: '511.65' },
  { release: '11.6 GA', cuda: '11.6', linuxMinDriver: '510.39.01', windowsMinDriver: '511.23' },
  { release: '11.5 Update 2', cuda: '11.5', linuxMinDriver: '495.29.05', windowsMinDriver: '496.13' },
  { release: '11.5 Update 1', cuda: '11.5', linuxMinDriver: '495.29.05', windowsMinDriver: '496.13' },
  { release: '11.5 GA', cuda: '11.5', linuxMinDriver: '495.29.05', windowsMinDriver: '496.04' },
  { release: '11.4 Update 4', cuda: '11.4', linuxMinDriver: '470.82.01', windowsMinDriver: '472.50' },
  { release: '11.4 Update 3', cuda: '11.4', linuxMinDriver: '470.82.01', windowsMinDriver: '472.50' },
  { release: '11.4 Update 2', cuda: '11.4', linuxMinDriver: '470.57.02', windowsMinDriver: '471.41' },
  { release: '11.4 Update 1', cuda: '11.4', linuxMinDriver: '470.57.02', windowsMinDriver: '471.41' },
  { release: '11.4.0 GA', cuda: '11.4', linuxMinDriver: '470.42.01', windowsMinDriver: '471.11' },
  { release: '11.3.1 Update 1', cuda: '11.3', linuxMinDriver: '465.19.01', windowsMinDriver: '465.89' },
  { release: '11.3.0 GA', cuda: '11.3', linuxMinDriver: '465.19.01', windowsMinDriver: '465.89' },
  { release: '11.2.2 Update 2', cuda: '11.2', linuxMinDriver: '460.32.03', windowsMinDriver: '461.33' },
  { release: '11.2.1 Update 1', cuda: '11.2', linuxMinDriver: '460.32.03', windowsMinDriver: '461.09' },
  { release: '11.2.0 GA', cuda: '11.2', linuxMinDriver: '460.27.03', windowsMinDriver: '460.82' },
  { release: '11.1.1 Update 1', cuda: '11.1', linuxMinDriver: '455.32', windowsMinDriver: '456.81' },
  { release: '11.1 GA', cuda: '11.1', linuxMinDriver: '455.23', windowsMinDriver: '456.38' },
  { release: '11.0.3 Update 1', cuda: '11.0', linuxMinDriver: '450.51.06', windowsMinDriver: '451.82' },
  { release: '11.0.2 GA', cuda: '11.0', linuxMinDriver: '450.51.05', windowsMinDriver: '451.48' },
  { release: '11.0.1 RC', cuda: '11.0', linuxMinDriver: '450.36.06', windowsMinDriver: '451.22' },
  { release: '10.2.89', cuda: '10.2', linuxMinDriver: '440.33', windowsMinDriver: '441.22' },
  { release: '10.1 (10.1.105 and updates)', cuda: '10.1', linuxMinDriver: '418.39', windowsMinDriver: '418.96' },
  { release: '10.0.130', cuda: '10.0', linuxMinDriver: '410.48', windowsMinDriver: '411.31' },
  { release: '9.2.148 Update 1', cuda: '9.2', linuxMinDriver: '396.37', windowsMinDriver: '398.26' },
  { release: '9.2.88', cuda: '9.2', linuxMinDriver: '396.26', windowsMinDriver: '397.44' },
  { release: '9.1.85', cuda: '9.1', linuxMinDriver: '390.46', windowsMinDriver: '391.29' },
  { release: '9.0.76', cuda: '9.0', linuxMinDriver: '384.81', windowsMinDriver: '385.54' },
  { release: '8.0.61 GA2', cuda: '8.0', linuxMinDriver: '375.26', windowsMinDriver: '376.51' },
  { release: '8.0.44', cuda: '8.0', linuxMinDriver: '367.48', windowsMinDriver: '369.30' },
  { release: '7.5.16', cuda: '7.5', linuxMinDriver: '352.31', windowsMinDriver: '353.66' },
  { release: '7.0.28', cuda: '7.0', linuxMinDriver: '346.46', windowsMinDriver: '347.62' },
]

export type DriverPlatform = 'linux' | 'windows'

/** The CUDA version (major.minor) a driver supports; null when older than every listed release or not a version. */
export function cudaVersionForDriver(driverVersion: string, platform: DriverPlatform = 'linux'): string | null {
  if (!isVersion(driverVersion)) return null
  for (const row of CUDA_TOOLKIT_DRIVERS) {
    const min = platform === 'linux' ? row.linuxMinDriver : row.windowsMinDriver
    if (min !== null && compareVersions(driverVersion, '>=', min) === true) return row.cuda
  }
  return null
}

/** The lowest driver that runs a CUDA major.minor (its first release); null when not listed. */
export function minimumDriverForCuda(cuda: string, platform: DriverPlatform = 'linux'): string | null {
  let lowest: string | null = null
  for (const row of CUDA_TOOLKIT_DRIVERS) {
    if (compareVersions(row.cuda, '=', cuda) !== true) continue
    const min = platform === 'linux' ? row.linuxMinDriver : row.windowsMinDriver
    if (min !== null && (lowest === null || compareVersions(min, '<', lowest) === true)) lowest = min
  }
  return lowest
}

// nvidia-smi prints a GPU's brand as NVML names it ("Tesla", "NVIDIA RTX", "NVIDIA RTX Virtual
// Workstation"); NVIDIA's runtime compares `brand=` conditions with its own name for the same NVML
// brand (libnvidia-container's driver_get_device_brand: "Tesla", "NvidiaRTX", "VWS", …), case-
// insensitively. This maps the first to the lower-case form of the second: the token images use.
const TOKENS: Record<string, string> = {
  quadro: 'quadro',
  tesla: 'tesla',
  nvs: 'nvs',
  grid: 'grid',
  geforce: 'geforce',
  titan: 'titan',
  'nvidia virtual applications': 'vapps',
  'nvidia virtual pc': 'vpc',
  'nvidia virtual compute server': 'vcs',
  'nvidia rtx virtual workstation': 'vws',
  'nvidia cloud gaming': 'cloudgaming',
  'quadro rtx': 'quadrortx',
  'nvidia rtx': 'nvidiartx',
  nvidia: 'nvidia',
  'geforce rtx': 'geforcertx',
  'titan rtx': 'titanrtx',
}

/** every token the runtime can report; "unknown" for an NVML brand it has no name for */
export const BRAND_TOKENS = [...new Set(Object.values(TOKENS)), 'unknown']

/** NVIDIA's brand token for nvidia-smi's product_brand; undefined when nvidia-smi did not say */
export function brandToken(productBrand: string | undefined): string | undefined {
  if (productBrand === undefined) return undefined
  return TOKENS[productBrand.trim().replace(/\s+/g, ' ').toLowerCase()] ?? 'unknown'
}

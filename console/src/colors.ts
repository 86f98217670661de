// Each outcome's colour, the same whatever else the range holds (it was its place in the list, so a
// code changed colour between ranges): allow is green, denials warm (reds, oranges, yellows,
// browns, pinks), errors cool (purples, blues); a code keeps its colour on every chart and legend.

export const ALLOW = '#2e8b57'
/** Clearly distinct warm colours, the commonest codes first (each named below gets its own). */
export const DENY = ['#d62728', '#ff7f0e', '#e6b800', '#8c564b', '#e377c2', '#800026', '#fdae6b', '#c51b7d', '#bf9b30']
/** Clearly distinct cool colours, apart from allow's green. */
export const ERROR = ['#6a3d9a', '#1f77b4', '#17becf', '#b39ddb', '#08306b']

/** The codes seen most: a colour each, so that none of them shares one. */
const FIXED: Record<string, string> = {
  'deny:policy_denied': DENY[0] as string,
  'deny:token_expired': DENY[1] as string,
  'deny:missing_token': DENY[2] as string,
  'deny:no_role': DENY[3] as string,
  'deny:rate_limited': DENY[4] as string,
  'deny:signature_invalid': DENY[5] as string,
  'deny:quota_exceeded': DENY[6] as string,
  'deny:route_not_found': DENY[7] as string,
  'error:upstream_unavailable': ERROR[0] as string,
  'error:upstream_timeout': ERROR[1] as string,
  'error:upstream_error': ERROR[2] as string,
  'error:internal_error': ERROR[3] as string,
}

/** FNV-1a: a stable number from the key, the same in every browser and session. */
function hash(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** An outcome's colour (`allow`, `deny:CODE`, `error:CODE`), from its key alone. */
export function outcomeColor(key: string): string {
  if (key === 'allow') return ALLOW
  const fixed = FIXED[key]
  if (fixed) return fixed
  const palette = key.startsWith('deny') ? DENY : ERROR
  return palette[hash(key) % palette.length] as string
}

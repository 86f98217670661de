// The Overview's outcome colours (console/src/colors.ts): a code's colour comes from its key alone,
// so it is the same in every range; denials and errors keep to their own hue families; the colours
// a chart may hold side by side are clearly apart.
import { describe, expect, it } from 'vitest'
import { ALLOW, DENY, ERROR, outcomeColor } from '../../../console/src/colors.ts'

const rgb = (hex: string) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number]
const distance = (a: string, b: string) => Math.hypot(...rgb(a).map((v, i) => v - (rgb(b)[i] as number)))
function hue(hex: string): number {
  const [r, g, b] = rgb(hex).map((v) => v / 255) as [number, number, number]
  const max = Math.max(r, g, b)
  const d = max - Math.min(r, g, b)
  const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4
  return (h * 60 + 360) % 360
}
const KEYS = ['allow', 'deny:policy_denied', 'deny:token_expired', 'deny:missing_token', 'deny:no_role', 'deny:rate_limited',
  'deny:signature_invalid', 'deny:issuer_unknown', 'error:upstream_unavailable', 'error:upstream_timeout', 'error:function_error']

describe('outcome colours', () => {
  it('are the same for a key whatever else the range holds, or in what order', () => {
    const alone = KEYS.map((k) => outcomeColor(k))
    expect(alone.every((c) => /^#[0-9a-f]{6}$/.test(c))).toBe(true)
    expect([...KEYS].reverse().map((k) => outcomeColor(k)).reverse()).toEqual(alone)
    expect(outcomeColor('deny:token_expired')).toBe(outcomeColor('deny:token_expired'))
  })

  it('tell deny:policy_denied from deny:token_expired, and the common codes from each other', () => {
    expect(distance(outcomeColor('deny:policy_denied'), outcomeColor('deny:token_expired'))).toBeGreaterThan(100)
    const common = KEYS.slice(0, 7).map((k) => outcomeColor(k))
    expect(new Set(common).size).toBe(common.length)
  })

  it('keep every pair of palette colours clearly apart, decisions in distinct hue families', () => {
    const all = [ALLOW, ...DENY, ...ERROR]
    for (const [i, a] of all.entries()) for (const b of all.slice(i + 1)) expect(distance(a, b), `${a} vs ${b}`).toBeGreaterThan(60)
    // Denials warm (red to yellow, or pink), errors cool (blue to purple), allow green.
    for (const c of DENY) expect(hue(c) <= 60 || hue(c) >= 300, c).toBe(true)
    for (const c of ERROR) expect(hue(c) >= 180 && hue(c) <= 290, c).toBe(true)
    expect(hue(ALLOW)).toBeGreaterThan(90)
    expect(hue(ALLOW)).toBeLessThan(170)
    for (const key of KEYS.filter((k) => k.startsWith('deny:'))) expect(DENY).toContain(outcomeColor(key))
    for (const key of KEYS.filter((k) => k.startsWith('error:'))) expect(ERROR).toContain(outcomeColor(key))
  })
})

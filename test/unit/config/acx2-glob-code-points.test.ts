// Found by the access probe (helper): a glob's `?` matched one UTF-16 code unit, not one character,
// as the README says it does: `user-?` did not match `user-😀` (an astral-plane character is two
// code units) but `user-??` did, and a deny on `name: "?"` skipped a one-emoji name. `?` now stands
// for one code point; values without surrogates take the code-unit path as before.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseGlob } from '../../../src/config/index.ts'

const glob = (text: string) => {
  const parsed = parseGlob(text)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}

describe('a glob\'s ? is one character (a code point)', () => {
  it('matches one astral-plane character, wherever the ? stands', () => {
    expect(glob('user-?').matches('user-😀')).toBe(true)
    expect(glob('?').matches('😀')).toBe(true)
    expect(glob('?-x').matches('𝒳-x')).toBe(true)
    expect(glob('*-?-*').matches('a-😀-b')).toBe(true)
    expect(glob('a*?b').matches('a😀b')).toBe(true)
    expect(glob('*?').matches('😀')).toBe(true)
    expect(glob('?*?').matches('😀😀')).toBe(true)
  })

  it('does not match half of one, nor two for one', () => {
    expect(glob('user-??').matches('user-😀')).toBe(false)
    expect(glob('??').matches('😀')).toBe(false)
    expect(glob('?').matches('😀😀')).toBe(false)
    expect(glob('*-??-*').matches('a-😀-b')).toBe(false)
    expect(glob('?😀').matches('😀')).toBe(false)
  })

  it('keeps literal astral characters and the ASCII behaviour', () => {
    expect(glob('team-😀-*').matches('team-😀-ops')).toBe(true)
    expect(glob('*😀').matches('x😀')).toBe(true)
    expect(glob('svc-?-x').matches('svc-a-x')).toBe(true)
    expect(glob('svc-?-x').matches('svc-ab-x')).toBe(false)
    expect(glob('?é').matches('xé')).toBe(true)
    // A lone surrogate (JSON can carry one) is one character too.
    expect(glob('a?b').matches('a\uD800b')).toBe(true)
  })
})

/** `*` any run of characters, `?` one: a reference by code points, as the README says it. */
function reference(glob: string, text: string): boolean {
  const value = Array.from(text)
  let reachable = value.map(() => false).concat(false)
  reachable[0] = true
  for (const c of glob) {
    const next = value.map(() => false).concat(false)
    for (let j = 0; j <= value.length; j++) {
      if (c === '*') next[j] = reachable[j] === true || (j > 0 && next[j - 1] === true)
      else if (j > 0 && reachable[j - 1] === true && (c === '?' || value[j - 1] === c)) next[j] = true
    }
    reachable = next
  }
  return reachable[value.length] === true
}

it('agrees with a reference on mixes of ASCII and astral-plane characters', () => {
  const chars = ['a', 'b', '😀', '𝒳', 'é']
  const text = (alphabet: string[]) => fc.array(fc.constantFrom(...alphabet), { maxLength: 8 }).map((cs) => cs.join(''))
  fc.assert(fc.property(text([...chars, '*', '?']).filter((g) => g !== ''), text(chars), (g, value) => {
    expect(glob(g).matches(value), `${g} on ${value}`).toBe(reference(g, value))
  }), { numRuns: 3000 })
})

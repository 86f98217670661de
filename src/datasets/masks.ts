// Masks: a column's values changed for callers who hold none of the mask's unless_roles, in the
// rows themselves (before any writer sees them), so every format carries the same masked value.
// `hash` is a keyed HMAC (the datasource's key): the same value hashes the same in every dataset of
// that source, so masked columns still join, but nobody without the key can test a guess.
import { createHmac } from 'node:crypto'
import type { MaskConfig } from '../config/index.ts'
import type { Cell, Column, Row } from './source.ts'

export type MaskKind = MaskConfig['with']

export interface AppliedMask {
  readonly index: number
  readonly kind: MaskKind
}

/**
 * The masks that apply to this caller. A mask covers every column of its name, case folded: a join
 * can return two `email` columns, and SQLite reports a column as its table declares it (`Email`)
 * though it reads `email` as the same name (found by an adversarial probe: the second column, and
 * SQLite's `Email`, went out unmasked). A column the result does not have is not masked (nothing to
 * hide).
 */
export function masksFor(masks: Readonly<Record<string, MaskConfig>>, columns: readonly Column[], roles: readonly string[]): AppliedMask[] {
  const applied: AppliedMask[] = []
  for (const [name, mask] of Object.entries(masks)) {
    if (mask.unless_roles.some((role) => roles.includes(role))) continue
    const folded = name.toLowerCase()
    for (let index = 0; index < columns.length; index++) {
      if ((columns[index] as Column).name.toLowerCase() === folded) applied.push({ index, kind: mask.with })
    }
  }
  return applied
}

/** The columns as the caller sees them: a masked value is a string (except `null`, which keeps the type). */
export function maskedColumns(columns: readonly Column[], applied: readonly AppliedMask[]): Column[] {
  const out = [...columns]
  for (const mask of applied) {
    const column = out[mask.index] as Column
    if (mask.kind !== 'null') out[mask.index] = { name: column.name, kind: 'string' }
  }
  return out
}

export function applyMasks(rows: Row[], applied: readonly AppliedMask[], key: Buffer): void {
  if (applied.length === 0) return
  for (const row of rows) {
    for (const mask of applied) row[mask.index] = maskValue(row[mask.index] as Cell, mask.kind, key)
  }
}

export function maskValue(value: Cell, kind: MaskKind, key: Buffer): Cell {
  if (value === null || kind === 'null') return null
  switch (kind) {
    case 'hash':
      return createHmac('sha256', key).update(value).digest('hex').slice(0, 32)
    case 'email_domain': {
      const at = value.lastIndexOf('@')
      return at === -1 ? '***' : `***${value.slice(at)}`
    }
    case 'redact':
      return '***'
  }
}

// Problems in a config file, each pointing at the line and column it came from.
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'
import { printable } from '../text/index.ts'

export type ConfigPath = ReadonlyArray<string | number>

export interface Diagnostic {
  severity: 'error' | 'warning'
  path: ConfigPath
  message: string
  line: number
  col: number
}

/** A problem found before its position is known; `Locator` gives it one. */
export interface Finding {
  severity: 'error' | 'warning'
  path: ConfigPath
  message: string
  /** Point at the map key rather than its value (unknown keys, duplicate names). */
  atKey?: boolean
}

export type Locator = (finding: Finding) => Diagnostic

/** `routes[2].upstream` */
export function formatPath(path: ConfigPath): string {
  let text = ''
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? part : `.${part}`
  return text
}

/**
 * `bouncer.yaml:14:7: routes[2].upstream: unknown upstream "sales"` (SPEC `bouncer check`), printable:
 * a message echoes the file's own values and keys, whoever wrote them.
 */
export function formatDiagnostic(file: string, d: Diagnostic): string {
  const where = d.path.length > 0 ? `${formatPath(d.path)}: ` : ''
  const level = d.severity === 'warning' ? 'warning: ' : ''
  return printable(`${file}:${d.line}:${d.col}: ${level}${where}${d.message}`)
}

/** Finds the deepest node of `path` that exists and reports where it starts. */
export function createLocator(doc: Document | undefined, lines: LineCounter): Locator {
  return (finding) => {
    const offset = doc ? offsetOf(doc, finding.path, finding.atKey === true) : 0
    const { line, col } = lines.linePos(offset)
    // Without a document (a file that cannot be read) yaml's LineCounter says line 0, column 0:
    // `file:1:0:` where every other diagnostic counts columns from 1 (found by an adversarial probe).
    return { severity: finding.severity, path: finding.path, message: finding.message, line: Math.max(line, 1), col: Math.max(col, 1) }
  }
}

function offsetOf(doc: Document, path: ConfigPath, atKey: boolean): number {
  let node: unknown = doc.contents
  let offset = rangeStart(node) ?? 0
  for (let i = 0; i < path.length; i++) {
    const part = path[i]
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(part))
      if (!pair) break
      const last = i === path.length - 1
      if (last && atKey) return rangeStart(pair.key) ?? offset
      node = pair.value
      offset = rangeStart(node) ?? rangeStart(pair.key) ?? offset
    } else if (isSeq(node) && typeof part === 'number') {
      node = node.items[part]
      if (node === undefined) break
      offset = rangeStart(node) ?? offset
    } else {
      break
    }
  }
  return offset
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range
  return range ? range[0] : undefined
}

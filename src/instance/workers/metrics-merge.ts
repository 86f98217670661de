// /metrics of a gateway with several workers: each worker's Prometheus text merged into one, so
// the series speak for the whole gateway. Per series (name and labels):
//   - counters, histograms and most gauges (requests in flight, queue depths, heap sizes) are summed;
//   - `bouncer_process_*` and `*_info` are the process's, and the workers are threads of one
//     process: the first worker's value is taken, not N times it;
//   - `*_up` gauges (a sink or a target is up) take the lowest: down in one worker is down; so
//     does a certificate's `*_expiry_timestamp_seconds`: the earliest is the one to renew;
//   - event-loop lag takes the highest worker's.
// A worker that stopped leaves its counters and histograms (as last scraped) in `carried`, added to
// the sum from then on, so the gateway's counters do not go back when a worker is replaced.

export type MergeRule = 'sum' | 'first' | 'min' | 'max'

export function ruleOf(family: string): MergeRule {
  if (family.startsWith('bouncer_process_') || family.endsWith('_info')) return 'first'
  if (family.endsWith('_up') || family.endsWith('_expiry_timestamp_seconds')) return 'min'
  if (family.includes('eventloop_lag')) return 'max'
  return 'sum'
}

interface Family {
  help: string | null
  type: string
  /** Series text (name and labels) → value, in the order first seen. */
  series: Map<string, number>
}

export type Families = Map<string, Family>

/** Parses Prometheus text: families by their `# TYPE` line, each sample under the last one. */
export function parseMetrics(text: string): Families {
  const families: Families = new Map()
  let help: string | null = null
  let current: Family | null = null
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) {
      help = line
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name = '', type = 'untyped'] = line.split(' ')
      current = families.get(name) ?? { help: help?.startsWith(`# HELP ${name} `) ? help : null, type, series: new Map() }
      families.set(name, current)
      continue
    }
    if (line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    if (space <= 0) continue
    const series = line.slice(0, space)
    const value = Number(line.slice(space + 1))
    if (current === null) {
      const name = series.split('{')[0] as string
      current = families.get(name) ?? { help: null, type: 'untyped', series: new Map() }
      families.set(name, current)
    }
    current.series.set(series, value)
  }
  return families
}

/** Whether a family's series only grow (kept from a stopped worker). */
export function isCumulative(family: { type: string }, name: string): boolean {
  return (family.type === 'counter' || family.type === 'histogram' || family.type === 'summary') && ruleOf(name) === 'sum'
}

/** Adds a stopped worker's cumulative series to `carried`. */
export function carry(carried: Families, last: Families): void {
  for (const [name, family] of last) {
    if (!isCumulative(family, name)) continue
    const into = carried.get(name) ?? { help: family.help, type: family.type, series: new Map() }
    carried.set(name, into)
    for (const [series, value] of family.series) into.series.set(series, (into.series.get(series) ?? 0) + value)
  }
}

/** Adds to a label-less counter in `carried`: what the primary itself counts for the gateway (records a stopped worker lost). */
export function addToCounter(carried: Families, name: string, value: number): void {
  const family = carried.get(name) ?? { help: null, type: 'counter', series: new Map() }
  carried.set(name, family)
  family.series.set(name, (family.series.get(name) ?? 0) + value)
}

/** The merged text of the workers' families (in the first worker's order), plus what stopped workers left. */
export function mergeMetrics(workers: readonly Families[], carried: Families = new Map()): string {
  const merged: Families = new Map()
  for (const families of [...workers, carried]) {
    for (const [name, family] of families) {
      const rule = ruleOf(name)
      if (families === carried && !isCumulative(family, name)) continue
      let into = merged.get(name)
      if (!into) {
        into = { help: family.help, type: family.type, series: new Map() }
        merged.set(name, into)
      }
      for (const [series, value] of family.series) {
        const before = into.series.get(series)
        into.series.set(series, before === undefined ? value : combine(rule, before, value))
      }
    }
  }
  let out = ''
  for (const [name, family] of merged) {
    if (family.help) out += `${family.help}\n`
    out += `# TYPE ${name} ${family.type}\n`
    for (const [series, value] of family.series) out += `${series} ${formatValue(value)}\n`
    out += '\n'
  }
  return out
}

function combine(rule: MergeRule, a: number, b: number): number {
  switch (rule) {
    case 'sum':
      return a + b
    case 'first':
      return a
    case 'min':
      return Math.min(a, b)
    case 'max':
      return Math.max(a, b)
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

// The check inspectHeaders makes on every header of every request (src/http/managed-headers.ts:
// the Set lookup, then isManagedVariant for a name not in it), on the names a browser's and an API
// client's requests carry. With another copy of managed-headers.ts (a commit before a change, say
// `git show HEAD~1:src/http/managed-headers.ts > /tmp/before.ts`) both run alternately in one
// process, so that a shared machine's noise falls on both: compare the minimums.
//
//   node bench/managed-headers.ts [/tmp/before.ts]
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

interface Checker { isManagedVariant(name: string): boolean; MANAGED_REQUEST_HEADERS: ReadonlySet<string> }

const NAMES = [
  'host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'referer', 'cookie', 'sec-fetch-dest', 'sec-fetch-mode',
  'sec-fetch-site', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform', 'content-type', 'content-length', 'origin', 'x-api-key',
  'x-requested-with', 'cache-control', 'pragma', 'priority', 'if-none-match', 'authorization', 'x-custom_thing', 'dnt',
  'upgrade-insecure-requests', 'x-amz-date', 'cf-ray',
]

function pass(checker: Checker, rounds: number): number {
  const { isManagedVariant, MANAGED_REQUEST_HEADERS } = checker
  let removed = 0
  for (let k = 0; k < rounds; k++) {
    for (let i = 0; i < NAMES.length; i++) {
      const name = NAMES[i] as string
      if (MANAGED_REQUEST_HEADERS.has(name) || isManagedVariant(name)) removed++
    }
  }
  return removed
}

/** ns a name, the minimum and the median of `samples` timed passes of each checker, taken in turn. */
export function benchManagedHeaders(checkers: readonly Checker[], samples = 15, rounds = 200_000): Array<{ minNs: number; medianNs: number }> {
  for (const checker of checkers) pass(checker, rounds)
  const times = checkers.map((): number[] => [])
  for (let s = 0; s < samples; s++) {
    checkers.forEach((checker, c) => {
      const start = process.hrtime.bigint()
      pass(checker, rounds)
      times[c]?.push(Number(process.hrtime.bigint() - start) / (rounds * NAMES.length))
    })
  }
  return times.map((ns) => {
    ns.sort((a, b) => a - b)
    return { minNs: ns[0] as number, medianNs: ns[Math.floor(ns.length / 2)] as number }
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const paths = [fileURLToPath(new URL('../src/http/managed-headers.ts', import.meta.url)), ...process.argv.slice(2).map((path) => resolve(path))]
  const checkers = await Promise.all(paths.map(async (path) => await import(path) as Checker))
  benchManagedHeaders(checkers).forEach((row, i) => {
    console.log(`${paths[i]}: ${row.minNs.toFixed(1)} ns a name (median ${row.medianNs.toFixed(1)})`)
  })
}

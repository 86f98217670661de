// What choosing a target costs per request (src/upstream/balance.ts): one target (what every
// upstream with `url` pays), and four targets under each strategy. Pools are made but never
// connected; only the choice is timed.
//
//   node bench/balance.ts
import { fileURLToPath } from 'node:url'
import type { BalanceStrategy } from '../src/config/index.ts'
import { pickTarget, type Balanced, type BalancedRequest } from '../src/upstream/balance.ts'
import { closeTarget, createTarget, type Target } from '../src/upstream/targets.ts'

export interface BalanceRow {
  case: string
  nsPerPick: number
}

function time(operations: number, run: () => void): number {
  run() // warm-up
  const started = performance.now()
  run()
  return ((performance.now() - started) * 1e6) / operations
}

export async function benchBalance(n = 2_000_000): Promise<BalanceRow[]> {
  const made: Target[] = []
  const targets = (count: number) => Array.from({ length: count }, (_, i) => {
    const target = createTarget(`http://10.0.0.${i + 1}:9500`, { connections: 1, connectTimeoutMs: 1000, timeoutMs: 1000, tls: null })
    made.push(target)
    return target
  })
  const requests: BalancedRequest[] = Array.from({ length: 1_000 }, (_, i) => ({
    identity: { issuerName: 'corp', iss: 'https://sso.example.com/', sub: `svc-${i}`, clientId: null, claims: {}, expiresAt: 0 },
    clientIp: '127.0.0.1',
  }))
  const rows: BalanceRow[] = []
  const measure = (name: string, upstream: Balanced) => {
    rows.push({ case: name, nsPerPick: time(n, () => {
      for (let i = 0; i < n; i++) pickTarget(upstream, requests[i % 1_000] as BalancedRequest, null)
    }) })
  }
  measure('1 target (url)', { targets: targets(1), balance: 'round_robin', next: 0 })
  for (const balance of ['round_robin', 'least_request', 'hash:principal'] as BalanceStrategy[]) {
    measure(`4 targets, ${balance}`, { targets: targets(4), balance, next: 0 })
  }
  await Promise.all(made.map(closeTarget))
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await benchBalance()) console.log(`${row.case.padEnd(30)} ${row.nsPerPick.toFixed(1)} ns/pick`)
}

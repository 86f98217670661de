// Which target takes a request (upstreams[].balance). Only available targets are chosen; none
// available is the caller's 503. A retry passes the targets already tried: an untried one is
// preferred, and one already tried is taken again only when no other is available.
//
// Measured (node bench/balance.ts, Node 24, the shared 2-core machine under other load): one target
// costs 7–20 ns, a length check and a flag, so an upstream with `url` pays what it did before
// targets; with 4 targets round_robin 30–45 ns, least_request 45–80 ns, hash:principal 270–600 ns
// (hashing the ~30 characters of issuer and subject, then one mix per target). A proxied request
// costs 50–70 µs of CPU: the choice stays under 1% of it.
import type { BalanceStrategy } from '../config/index.ts'
import type { RequestFacts } from '../request/index.ts'
import { hashString, type Target } from './targets.ts'

/** What balancing reads of a request: who it is for hash:principal. */
export type BalancedRequest = Pick<RequestFacts, 'identity' | 'clientIp'>

export interface Balanced {
  readonly targets: readonly Target[]
  readonly balance: BalanceStrategy
  /** Where round_robin (and least_request's tie-breaking) goes on from. */
  next: number
}

export function pickTarget(upstream: Balanced, request: BalancedRequest, tried: readonly Target[] | null): Target | null {
  const targets = upstream.targets
  if (targets.length === 1) {
    const only = targets[0] as Target
    return only.available ? only : null
  }
  // Only a first pick moves the turn: a retry's moved it past a failing target's successor, and
  // with two targets, one dead, every request tried the dead one first (found by a probe).
  const untried = choose(upstream, request, tried, tried === null)
  return untried !== null || tried === null ? untried : choose(upstream, request, null, false)
}

function choose(upstream: Balanced, request: BalancedRequest, tried: readonly Target[] | null, turns: boolean): Target | null {
  switch (upstream.balance) {
    case 'round_robin':
      return roundRobin(upstream, tried, turns)
    case 'least_request':
      return leastRequest(upstream, tried, turns)
    case 'hash:principal':
      return rendezvous(upstream.targets, principalHash(request), tried)
  }
}

function eligible(target: Target, tried: readonly Target[] | null): boolean {
  return target.available && (tried === null || !tried.includes(target))
}

function roundRobin(upstream: Balanced, tried: readonly Target[] | null, turns: boolean): Target | null {
  const targets = upstream.targets
  const n = targets.length
  for (let i = 0; i < n; i++) {
    const index = (upstream.next + i) % n
    const target = targets[index] as Target
    if (eligible(target, tried)) {
      if (turns) upstream.next = (index + 1) % n
      return target
    }
  }
  return null
}

/** The fewest requests in flight; ties go round, so an idle upstream is still spread evenly. */
function leastRequest(upstream: Balanced, tried: readonly Target[] | null, turns: boolean): Target | null {
  const targets = upstream.targets
  const n = targets.length
  const start = upstream.next
  if (turns) upstream.next = (start + 1) % n
  let best: Target | null = null
  for (let i = 0; i < n; i++) {
    const target = targets[(start + i) % n] as Target
    if (eligible(target, tried) && (best === null || target.inFlight < best.inFlight)) best = target
  }
  return best
}

/**
 * Rendezvous (highest random weight) hashing: each principal ranks the targets by a hash of the
 * pair and takes the first available one. A principal stays on its target while that target is
 * available, and when one goes, only its principals move (to their next choice), and they come
 * back when it returns: no ring to rebuild, and no state.
 */
function rendezvous(targets: readonly Target[], key: number, tried: readonly Target[] | null): Target | null {
  let best: Target | null = null
  let bestScore = -1
  for (const target of targets) {
    if (!eligible(target, tried)) continue
    const score = mix(key ^ target.seed)
    if (score > bestScore) {
      best = target
      bestScore = score
    }
  }
  return best
}

/** The principal as the limits count it (issuer and subject); a public route's caller by address. */
function principalHash(request: BalancedRequest): number {
  const identity = request.identity
  if (identity === null) return hashString(request.clientIp)
  // Issuer, a separator no issuer URL holds, then subject: one hash run on, no string built.
  return hashString(identity.sub, Math.imul(hashString(identity.iss) ^ 0xff, 0x01000193) >>> 0)
}

/** MurmurHash3's finalizer: every input bit moves every output bit. */
function mix(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

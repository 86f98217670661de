// Where sessions are kept (sign_in.session.store): a server-side record per signed-in browser,
// named by the hash of its cookie, never by the cookie itself, so a copy of the store holds no
// usable credential. `memory` (one process), `sqlite` (one host; several processes share the file)
// or `redis` (several instances). A sign-in under way is not kept here but in the browser's state
// cookie (sign-in-state.ts), sealed with the one key the store keeps for it, so the instance that
// answers the callback need not be the one that sent the browser to the provider. Times are epoch
// milliseconds.

/**
 * Which sign-in made a session: the gateway's (sign_in) or the admin console's. Both keep their
 * sessions in sign_in's store; each accepts only its own, so a cookie value that leaks from one
 * (the gateway's domain is the applications') is no way into the other.
 */
export type SessionAudience = 'gateway' | 'console'

export interface SessionRecord {
  /** Hex SHA-256 of the cookie value (its first 32 digits): how the CLI and admin API name it. */
  readonly id: string
  /** The configured issuer's name. */
  readonly issuer: string
  readonly subject: string
  /** The ID token's claims (groups included), without its protocol fields (nonce, at_hash, exp…). */
  readonly claims: Readonly<Record<string, unknown>>
  readonly createdAt: number
  readonly lastSeenAt: number
  /**
   * The idle end written with the last use: lastSeenAt + the idle timeout of the gateway that
   * recorded it. What tells a gateway that opened the store later (a restart, another instance)
   * that a session had already ended before a longer idle came in (IdleTimeout). Absent on records
   * written before it was kept.
   */
  readonly idleUntil?: number
  /** Absolute end: sign-in time + session.ttl. */
  readonly expiresAt: number
  /** When to refresh the claims with the refresh token (the ID token's exp); null: never. */
  readonly refreshAt: number | null
  /** The provider's ID and refresh tokens, sealed with a key only the cookie gives (seal.ts); null when none. */
  readonly sealed: string | null
  readonly audience: SessionAudience
}

export interface SessionStore {
  readonly kind: 'memory' | 'sqlite' | 'redis'
  /** For messages: the file, or the Redis address and prefix (never a password). */
  readonly location: string
  /** The record, or undefined; a promise only when the store answers asynchronously (Redis). Rejects with SessionStoreError. */
  get(id: string): SessionRecord | undefined | Promise<SessionRecord | undefined>
  put(record: SessionRecord): Promise<void>
  /**
   * Rewrites a session only while it still exists; false when it has ended (signed out, revoked,
   * expired). A refresh writes with this, never with put: a session ended while its refresh was
   * at the provider must stay ended (an adversarial probe found put's upsert bringing it back).
   */
  update(record: SessionRecord): Promise<boolean>
  /**
   * Takes the right to make the refresh named `claim` (a session's id and the refreshAt it
   * replaces) until `until` (ms); false while another gateway, or another worker, holds it.
   * Providers that rotate refresh tokens refuse the second use of one, and some then revoke the
   * session's whole family: one refresh per session at once, across every process on the store.
   * A callback takes its sign-in's state the same way (`sign-in:…`, until the sign-in's end), never
   * let go: a state is good for one callback.
   */
  claimRefresh(claim: string, until: number, now: number): Promise<boolean>
  /**
   * Lets the claim go once its refresh has failed: only the holder's own claim, named by the
   * `until` it was taken with. A holder slower than its claim finds it lapsed and perhaps taken by
   * another; it must not free that one.
   */
  releaseRefresh(claim: string, until: number): Promise<void>
  /** Marks a use (for the idle timeout); written at most every few seconds per session by the caller. */
  touch(id: string, at: number): Promise<void>
  /** Ends a session; false when there was none. */
  delete(id: string): Promise<boolean>
  /** The live sessions, newest first: neither past their absolute end nor idle (as the gateway would refuse them), whether or not swept yet. */
  list(now: number): Promise<SessionRecord[]>
  /**
   * 32 random bytes, made by whichever gateway asks first and then the same for every gateway
   * sharing the store: what sign-in state cookies are sealed with (sign-in-state.ts). One key per
   * store, never a record per sign-in: page loads without a session write nothing.
   */
  signInKey(): Promise<Buffer>
  /**
   * The idle timeout (sign_in.session.idle) its sweep and list go by, and the ones before it in
   * this process: a reload that changes only the timeout keeps the store, and its sessions, and
   * sets the new one here (IdleTimeout.set).
   */
  readonly idle: IdleTimeout
  /** For /readyz: `ready`, or why not (`connecting`, `unavailable: …`). */
  status(): string
  /**
   * Has it answered since it opened? /readyz waits for that, as for the Redis limits store: an
   * outage after it only shows in the checks (every instance shares it; taking them all out of
   * rotation would not help).
   */
  answeredOnce(): boolean
  close(): Promise<void>
}

/**
 * Sessions one person (issuer and subject) holds at once, both audiences, in every store; the
 * oldest ends when a sign-in would make more. A signed-in person's browser signs in again without
 * a prompt while the provider's own session lasts, so a script holding it made a session every
 * ~17 ms, each a record until its idle timeout: gigabytes in an hour of the gateway's memory, of
 * the SQLite file or of Redis, and nothing bounded them (found by the limits probe).
 */
export const SESSIONS_PER_PERSON = 100

/**
 * A store's idle timeout, and what is left of the ones before it: a session that went idle under
 * the timeout in force then stays ended when a reload lengthens it. Memory and SQLite delete such a
 * session only at their minute's sweep, and Redis never (its key lasts to the absolute end), so a
 * longer idle judged by itself alone brought it back (an adversarial probe: idle 30m, unused for
 * 40m, valid again once a reload set 60m). A session still live when the timeout changes takes the
 * new one; a shorter one applies at once.
 *
 * Two parts, neither a store round trip: `cutoff`, this process's memory of its earlier timeouts
 * (a session last used at or before it ended under one of them: the latest of each timeout's
 * replacement time less that timeout), and each session's own `idleUntil`, written with every use,
 * for what came before this process opened the store (a restart with a longer idle, or another
 * instance's reload): a session whose idleUntil is at or before `openedAt` had ended before this
 * process knew it. An instance that opened later than another's reload is the stricter of the two
 * (it ends sessions that were live at that reload but idle past their old timeout since). A record
 * written before idleUntil was kept is judged by this process's timeouts only.
 */
export class IdleTimeout {
  #ms: number
  #cutoff = -Infinity
  readonly #openedAt: number

  constructor(ms: number, openedAt = Date.now()) {
    this.#ms = ms
    this.#openedAt = openedAt
  }

  /** The timeout in force. */
  get ms(): number {
    return this.#ms
  }

  /** A reload's timeout, in force from `at`: sessions idle past the one it replaces stay ended. */
  set(ms: number, at = Date.now()): void {
    if (ms === this.#ms) return
    this.#cutoff = Math.max(this.#cutoff, at - this.#ms)
    this.#ms = ms
  }

  /** The record's idle end under the timeout in force, or earlier where an earlier timeout had already ended it. */
  endedBefore(record: SessionRecord): boolean {
    return record.lastSeenAt <= this.#cutoff || (record.idleUntil !== undefined && record.idleUntil <= this.#openedAt)
  }

  /** Idle at `at`: under `ms` (a sign-in's own timeout; the store's by default), or ended under an earlier one. */
  ended(record: SessionRecord, at: number, ms = this.#ms): boolean {
    return record.lastSeenAt + ms <= at || this.endedBefore(record)
  }

  /** For a sweep's `last_seen_at <= ?`: the last use before which every session has gone idle at `now`. */
  sweepBefore(now: number): number {
    return Math.max(now - this.#ms, this.#cutoff)
  }

  /** For a sweep's `idle_until <= ?`: sessions whose own idle end is at or before it had ended before this process opened the store. */
  get openedAt(): number {
    return this.#openedAt
  }
}

export class SessionStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SessionStoreError'
  }
}

/** What the CLI and the admin API show of a session: never its tokens or cookie. */
export interface SessionDocument {
  id: string
  issuer: string
  subject: string
  /** The sign-in it belongs to: the gateway's, or the admin console's. */
  audience: SessionAudience
  name: string | null
  email: string | null
  created_at: string
  last_seen_at: string
  expires_at: string
}

export function sessionDocument(record: SessionRecord): SessionDocument {
  const text = (value: unknown) => (typeof value === 'string' ? value : null)
  return {
    id: record.id,
    issuer: record.issuer,
    subject: record.subject,
    audience: record.audience,
    name: text(record.claims.name),
    email: text(record.claims.email),
    created_at: new Date(record.createdAt).toISOString(),
    last_seen_at: new Date(record.lastSeenAt).toISOString(),
    expires_at: new Date(record.expiresAt).toISOString(),
  }
}

/** A session id as the CLI and admin API take it: 32 hex digits. */
export const SESSION_ID = /^[0-9a-f]{32}$/

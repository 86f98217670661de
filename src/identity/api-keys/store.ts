// Where API keys are kept: SQLite (one host, or instances sharing the file) or PostgreSQL (several
// instances). A record holds the key's hash, never the key. Times are epoch milliseconds.

export interface ApiKeyRecord {
  readonly id: string
  /** The principal the key stands for: its identity's subject. */
  readonly principal: string
  readonly description: string | null
  /** SHA-256 of the secret, hex. */
  readonly hash: string
  readonly createdAt: number
  readonly expiresAt: number | null
  readonly revokedAt: number | null
  readonly lastUsedAt: number | null
}

export type ApiKeyStatus = 'active' | 'expired' | 'revoked'

export function statusOf(record: ApiKeyRecord, now: number): ApiKeyStatus {
  if (record.revokedAt !== null) return 'revoked'
  return record.expiresAt !== null && record.expiresAt <= now ? 'expired' : 'active'
}

export interface ApiKeyStore {
  readonly kind: 'sqlite' | 'postgres'
  /** For messages: the file, or the database and schema (never a password). */
  readonly location: string
  /** How many reads it runs at once (PostgreSQL: its pool's connections); SQLite reads one at a time, without waiting, so Infinity. */
  readonly readers: number
  find(id: string): Promise<ApiKeyRecord | undefined>
  insert(record: ApiKeyRecord): Promise<void>
  /** Every key, newest first. */
  list(): Promise<ApiKeyRecord[]>
  /** Sets revokedAt (once: a second revocation keeps the first time); the record after, or undefined for no such key. */
  revoke(id: string, at: number): Promise<ApiKeyRecord | undefined>
  /** Last-used times, batched: a time never moves back (several instances write them). */
  recordUse(uses: ReadonlyMap<string, number>): Promise<void>
  /** For /readyz: `ready`, or why not (`connecting`, `unavailable: …`). */
  status(): string
  /**
   * Has it answered since it opened? /readyz waits for that, as for the Redis session store: every
   * API key request reads it. An outage after it only shows in the checks.
   */
  answeredOnce(): boolean
  close(): Promise<void>
}

export class ApiKeyStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ApiKeyStoreError'
  }
}

/** Too many reads of ids no secret has proven lately are waiting for the store: this one is not asked. */
export class ApiKeyReadsBusy extends ApiKeyStoreError {
  constructor(message: string) {
    super(message)
    this.name = 'ApiKeyReadsBusy'
  }
}

/** A key as `bouncer keys list --json` and `GET /api/keys` show it: never its hash. Times are RFC 3339. */
export interface ApiKeyDocument {
  id: string
  principal: string
  description: string | null
  status: ApiKeyStatus
  created_at: string
  expires_at: string | null
  last_used_at: string | null
  revoked_at: string | null
}

export function keyDocument(record: ApiKeyRecord, now: number): ApiKeyDocument {
  const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
  return {
    id: record.id,
    principal: record.principal,
    description: record.description,
    status: statusOf(record, now),
    created_at: new Date(record.createdAt).toISOString(),
    expires_at: time(record.expiresAt),
    last_used_at: time(record.lastUsedAt),
    revoked_at: time(record.revokedAt),
  }
}

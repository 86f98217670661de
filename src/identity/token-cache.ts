// Verified tokens, so a dashboard sending the same token a thousand times pays for one signature
// check. Keyed by the whole token string (no encoding two tokens could share), bounded in size
// (least recently used out first), and an entry never outlives its token or a cap, so a key
// removed from the issuer's JWKS stops being honoured within `maxAgeMs`.

export interface TokenCache<V> {
  get(token: string, nowMs: number): V | undefined
  set(token: string, value: V, expiresAtMs: number): void
  readonly size: number
}

interface Entry<V> {
  value: V
  expiresAtMs: number
}

export function createTokenCache<V>(maxEntries: number): TokenCache<V> {
  const entries = new Map<string, Entry<V>>()
  return {
    get(token, nowMs) {
      const entry = entries.get(token)
      if (entry === undefined) return undefined
      if (entry.expiresAtMs <= nowMs) {
        entries.delete(token)
        return undefined
      }
      // Map keeps insertion order: re-inserting makes this the most recently used.
      entries.delete(token)
      entries.set(token, entry)
      return entry.value
    },
    set(token, value, expiresAtMs) {
      if (maxEntries === 0) return
      entries.delete(token)
      entries.set(token, { value, expiresAtMs })
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
    },
    get size() {
      return entries.size
    },
  }
}

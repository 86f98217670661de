// A Redis failover behind an address that moves (a managed Redis's primary endpoint, a DNS name):
// the demoted primary keeps its clients and answers every write READONLY, while new connections
// reach the new primary. The limits and session stores make their connection again on such an
// answer (ioredis's reconnectOnError), and say on /readyz while the address still leads to a replica.

/** A replica's refusal of a write (a script's, since Redis 7 before it runs; inside its error before). */
const READ_ONLY = /\bREADONLY\b/

/** A store's /readyz state from a READONLY answer until a write is answered. */
export const REPLICA_STATE = 'unavailable: Redis answers READONLY, a replica (a failover?): connecting again'

/** ioredis's reconnectOnError: true (connect again) for a READONLY answer, which `seen` is told of first. */
export function reconnectOnReadOnly(seen: (err: Error) => void): (err: Error) => boolean {
  return (err) => {
    if (!READ_ONLY.test(err.message)) return false
    seen(err)
    return true
  }
}

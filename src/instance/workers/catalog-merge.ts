// GET /api/catalog under server.workers: each worker fetches its issuers' key sets itself, so one
// worker's issuer can be unavailable while another's is ready. Passed to whichever worker answered,
// the console showed that worker's state as the gateway's, and an issuer failing on half the
// workers (half the requests refused) could read "ready". The primary asks every worker and shows
// the worst state, with each worker's beside it.
import type { Catalog } from '../../admin/index.ts'

type Issuer = Catalog['issuers'][number]

/** How bad an issuer's state is for the requests it should verify: the gateway's is its worst worker's. */
const SEVERITY: Record<Issuer['state'], number> = { ready: 0, introspection: 0, none: 0, loading: 1, unavailable: 2 }

/**
 * The first worker's catalog, each issuer's state the worst any worker has, and every worker's own
 * under `workers`. `unanswered`: the workers asked that gave no catalog (busy past the bound, or an
 * error), each with why: every issuer is `unavailable` on it, with that reason. Left out, a worker
 * stuck in a long synchronous task was missing from `workers`, and the issuer read "ready" from the
 * other one while /readyz said the gateway was not ready (a probe).
 */
export function mergeCatalogs(answers: ReadonlyArray<{ worker: string; catalog: Catalog }>, unanswered: ReadonlyArray<{ worker: string; why: string }> = []): Catalog {
  const [first] = answers
  if (!first) throw new Error('mergeCatalogs needs at least one answer')
  const issuers = first.catalog.issuers.map((issuer): Issuer => {
    const each = [
      ...answers.flatMap(({ worker, catalog }) => {
        const own = catalog.issuers.find((i) => i.name === issuer.name)
        return own ? [{ worker, own }] : []
      }),
      ...unanswered.map(({ worker, why }) => ({ worker, own: { ...issuer, state: 'unavailable' as const, keys: [], last_refresh: null, last_error: why } })),
    ].sort((a, b) => a.worker.localeCompare(b.worker, 'en', { numeric: true }))
    // The worst worker speaks for the issuer: its state, its keys and its error.
    const worst = each.reduce((a, b) => (SEVERITY[b.own.state] > SEVERITY[a.own.state] ? b : a))
    return {
      ...worst.own,
      last_error: worst.own.last_error ?? each.find((e) => e.own.last_error !== null)?.own.last_error ?? null,
      workers: each.map(({ worker, own }) => ({ worker, state: own.state, keys: own.keys.length, last_refresh: own.last_refresh, last_error: own.last_error })),
    }
  })
  return { ...first.catalog, issuers }
}

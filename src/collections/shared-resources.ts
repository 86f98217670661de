// Long-lived resources that outlive one config: an upstream's connection pool, an issuer's key
// set, a limits store. A reload acquires the resources of the new config: where the settings did
// not change it gets the same object back (warm connections, loaded keys and counted buckets
// survive), and what no config uses any more is retired, that is closed.

export interface ResourceKind<C, R> {
  /** Equal for settings that may share one resource. */
  fingerprint(config: C): string
  create(config: C): R
  close(resource: R): unknown
  /**
   * Closing one that a reload left unused, where that differs from closing at a shutdown (a
   * function's pool lets its invocations finish); else close. One still retiring at closeAll is
   * closed there too, as a shutdown closes: close may then meet it half-retired.
   */
  retire?(resource: R): unknown
}

export interface SharedResources<C, R> {
  /** The live resource for these settings, or a new one. */
  acquire(config: C): R
  /** Closes every resource but those in `keep`; resolves once they are closed (a failed close included). */
  retire(keep: Iterable<R>): Promise<void>
  closeAll(): Promise<void>
}

export function createSharedResources<C, R>(kind: ResourceKind<C, R>): SharedResources<C, R> {
  const live = new Map<string, R>()
  /**
   * Retired by a reload, where retiring differs from closing, and not yet done: a shutdown closes
   * these too. A function's pool retired while an invocation ran waited for it (up to the function's
   * timeout) through the shutdown, its request held open past the drain, and the audit log closed
   * under it: the request's record was lost (found by review).
   */
  const retiring = new Set<R>()

  function acquire(config: C): R {
    const key = kind.fingerprint(config)
    let resource = live.get(key)
    if (resource === undefined) {
      resource = kind.create(config)
      live.set(key, resource)
    }
    return resource
  }

  async function close(resources: readonly R[]): Promise<void> {
    await Promise.allSettled(resources.map(async (resource) => kind.close(resource)))
  }

  async function retireAll(resources: readonly R[]): Promise<void> {
    const { retire } = kind
    if (retire === undefined) return close(resources)
    await Promise.allSettled(resources.map(async (resource) => {
      retiring.add(resource)
      try {
        await retire(resource)
      } finally {
        retiring.delete(resource)
      }
    }))
  }

  return {
    acquire,
    retire(keep) {
      const kept = new Set(keep)
      const closing: R[] = []
      for (const [key, resource] of live) {
        if (kept.has(resource)) continue
        live.delete(key)
        closing.push(resource)
      }
      return retireAll(closing)
    },
    closeAll() {
      const all = [...live.values(), ...retiring]
      live.clear()
      return close(all)
    },
  }
}

/**
 * The open resources of each name, oldest first, for a registry whose reload hands what a resource
 * learned (credential values rotated out) to the one made anew under its name. Keeping only the
 * latest lost it: a refused reload's resource, made then closed, took the record with it, and the
 * next reload began empty (a probe). Closed, a resource leaves the one before it last again.
 */
export interface OpenByName<T> {
  /** The last still open under the name, if any. */
  last(name: string): T | undefined
  opened(name: string, resource: T): void
  closed(name: string, resource: T): void
}

export function openByName<T>(): OpenByName<T> {
  const open = new Map<string, T[]>()
  return {
    last: (name) => open.get(name)?.at(-1),
    opened(name, resource) {
      const named = open.get(name)
      if (named === undefined) open.set(name, [resource])
      else named.push(resource)
    },
    closed(name, resource) {
      const left = open.get(name)?.filter((one) => one !== resource) ?? []
      if (left.length === 0) open.delete(name)
      else open.set(name, left)
    },
  }
}

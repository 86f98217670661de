// Which files this process holds open (Linux /proc): how a test sees that an in-process gateway
// closed a SQLite handle.
import { readdirSync, readlinkSync } from 'node:fs'

/** This process's open descriptors on `path`. */
export function handlesOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false // closed while listed
    }
  }).length
}

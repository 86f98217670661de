// Threads of this process by their OS name (/proc/self/task/*/comm): a function's worker threads
// are named `function NAME` (15 bytes at most are kept), so a test counts its own pool's.
import { readdirSync, readFileSync } from 'node:fs'

export function threadsNamed(name: string): number {
  return readdirSync('/proc/self/task').filter((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name
    } catch {
      return false // the thread ended between the listing and the read
    }
  }).length
}

// jose, loaded when it is first used (a key set made, an error told apart), synchronously: Node
// requires an ES module that has no top-level await. Imported at the top of the modules that use
// it, it came (46 modules) with this folder into every command that reads API keys or sessions
// (bouncer keys, sessions, secrets: hundreds of starts a test run), none of which verifies a token.
import { createRequire } from 'node:module'
import type * as Jose from 'jose'

let loaded: typeof Jose | undefined

export function jose(): typeof Jose {
  return (loaded ??= createRequire(import.meta.url)('jose') as typeof Jose)
}

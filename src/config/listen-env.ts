// Listen addresses from the environment, for where the built-in loopback defaults are wrong: inside
// a container, 127.0.0.1 cannot be reached from outside it, so the image sets BOUNCER_LISTEN to
// 0.0.0.0:8080. Each variable stands in for the default only: an address the file gives wins (it is
// what the operator wrote), and --port / --admin-port win over both.
import type { Finding } from './diagnostics.ts'
import { parseListen } from './values.ts'

export const LISTEN_VARIABLES = { server: 'BOUNCER_LISTEN', admin: 'BOUNCER_ADMIN_LISTEN' } as const

/** Fills `server.listen` / `admin.listen` of the raw document from the environment where the file has none. */
export function applyListenVariables(raw: unknown, env: NodeJS.ProcessEnv): Finding[] {
  const findings: Finding[] = []
  if (!isRecord(raw)) return findings
  for (const [section, variable] of Object.entries(LISTEN_VARIABLES)) {
    const value = env[variable]
    const current = raw[section]
    if (!value || (current !== undefined && !isRecord(current)) || (isRecord(current) && current.listen !== undefined)) continue
    if (!parseListen(value).ok) {
      findings.push({ severity: 'error', path: [], message: `${variable}="${value}" is not a listen address: write it like 0.0.0.0:8080 or [::]:8080` })
      continue
    }
    raw[section] = { ...current, listen: value }
  }
  return findings
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

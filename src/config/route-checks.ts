// Warnings about routes: legal, but almost certainly not what was meant (README "Path rules").
import type { Finding } from './diagnostics.ts'
import { foldPathCase, parseRoutePattern } from './route-pattern.ts'
import type { Config } from './schema.ts'

export function routeFindings(config: Config): Finding[] {
  return [...riskyMethods(config), ...caseTwins(config), ...unmatchableSegments(config)]
}

/** TRACE reflects the credentials the gateway adds; CONNECT is never forwarded. */
function riskyMethods(config: Config): Finding[] {
  const findings: Finding[] = []
  config.routes.forEach((route, i) => {
    route.methods.forEach((method, j) => {
      if (method === 'TRACE') {
        findings.push({
          severity: 'warning',
          path: ['routes', i, 'methods', j],
          message: `route "${route.id}" takes TRACE: the upstream echoes the request back to the caller, with the headers the gateway sets for it (its credentials): list TRACE only for an upstream that needs it`,
        })
      } else if (method === 'CONNECT') {
        findings.push({
          severity: 'warning',
          path: ['routes', i, 'methods', j],
          message: `route "${route.id}" lists CONNECT, which never reaches it: the gateway refuses CONNECT tunnels (400 bad_path)`,
        })
      }
    })
  })
  return findings
}

/** `/API/x` and `/api/x`: one path for upstreams that ignore case, whatever the gateway does. */
function caseTwins(config: Config): Finding[] {
  const findings: Finding[] = []
  const first = new Map<string, { id: string; path: string }>()
  const sensitive = config.server.case_sensitive_paths
  config.routes.forEach((route, i) => {
    const key = foldPathCase(route.path)
    const twin = first.get(key)
    if (!twin) return void first.set(key, { id: route.id, path: route.path })
    if (twin.path === route.path) return
    findings.push({
      severity: 'warning',
      path: ['routes', i, 'path'],
      message: sensitive
        ? `route "${route.id}" path ${route.path} differs from route "${twin.id}" path ${twin.path} only in letter case: upstreams that ignore case (Express, ASP.NET) serve both as one path, but the gateway authorizes them apart (server.case_sensitive_paths)`
        : `route "${route.id}" path ${route.path} differs from route "${twin.id}" path ${twin.path} only in letter case: paths match case-insensitively, so both match the same requests (the first in file order wins)`,
    })
  })
  return findings
}

/** Literal segments no request can match: the gateway refuses (or strips) what they hold. */
function unmatchableSegments(config: Config): Finding[] {
  const findings: Finding[] = []
  config.routes.forEach((route, i) => {
    const parsed = parseRoutePattern(route.path)
    if (!parsed.ok) return
    for (const segment of parsed.value.segments) {
      if (segment.kind !== 'literal') continue
      const why = segment.value.includes(';')
        ? 'a ";" in a request path starts path parameters, which are refused or left out of matching'
        : /[.\s\u0085]$/u.test(segment.value)
          ? 'a request path segment ending in "." or whitespace is refused (400 bad_path)'
          : null
      if (why) findings.push({ severity: 'warning', path: ['routes', i, 'path'], message: `segment "${segment.raw}" of route "${route.id}" never matches: ${why}` })
    }
  })
  return findings
}

// Checks of upstreams that need more than one key, or the disk: their URLs, that several targets
// are copies of one service, the TLS files; and warnings for what is legal but unwise.
import { foldHeaderName } from '../http/index.ts'
import type { ConfigPath, Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { loadTlsMaterial } from './upstream-tls.ts'

export function upstreamFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  config.upstreams.forEach((upstream, i) => {
    const urls = upstream.targets ?? (upstream.url === undefined ? [] : [upstream.url])
    const where = (j: number) => (upstream.targets ? ['upstreams', i, 'targets', j] : ['upstreams', i, 'url'])
    const seen = new Set<string>()
    let firstPath: string | undefined
    urls.forEach((text, j) => {
      const url = new URL(text)
      const error = (message: string) => findings.push({ severity: 'error', path: where(j), message })
      if (url.search || url.hash) error('an upstream URL cannot hold a query or a fragment')
      if (url.username || url.password) error('put credentials in headers (with ${secret:NAME}), not in the URL')
      if (seen.has(url.origin)) error(`target ${url.origin} is listed twice`)
      seen.add(url.origin)
      const path = url.pathname.replace(/\/+$/, '')
      firstPath ??= path
      if (path !== firstPath) error(`every target of an upstream has the same path (the first has "${firstPath || '/'}"): they are copies of one service`)
      if (upstream.tls && url.protocol !== 'https:') error(`tls applies to https:// targets; ${url.origin} is http://`)
    })
    findings.push(...repeatedHeaders(upstream.headers, ['upstreams', i, 'headers']))
    if (upstream.tls) {
      for (const problem of loadTlsMaterial(upstream.tls).problems) {
        findings.push({ severity: 'error', path: ['upstreams', i, 'tls', problem.key], message: problem.message })
      }
    }
    if (urls.length > 1 && !upstream.health_check && !upstream.eject) {
      findings.push({
        severity: 'warning',
        path: ['upstreams', i, 'targets'],
        message: `upstream "${upstream.name}" has several targets but neither health_check nor eject: a target that dies keeps getting its share of requests`,
      })
    }
  })
  return findings
}

/**
 * A header configured twice under two spellings (`Authorization` and `authorization`, `X_Api_Key`
 * beside `X-Api-Key`), at the second: YAML sees two keys, and both were sent, two credentials an
 * upstream reads as it pleases (found by an adversarial probe). Names as an upstream reads them:
 * without case, and `_` or `.` as `-`.
 */
export function repeatedHeaders(headers: Readonly<Record<string, string>>, at: ConfigPath): Finding[] {
  const findings: Finding[] = []
  const first = new Map<string, string>()
  for (const header of Object.keys(headers)) {
    const folded = foldHeaderName(header.toLowerCase())
    const earlier = first.get(folded)
    if (earlier === undefined) first.set(folded, header)
    else findings.push({ severity: 'error', path: [...at, header], atKey: true, message: `this is the header ${earlier} again (header names are read without case, and _ or . as -): list it once` })
  }
  return findings
}

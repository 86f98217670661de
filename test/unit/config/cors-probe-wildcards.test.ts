// A careless operator's wildcards in routes[].cors: `https://*.example.com` in origins, or `*` in
// headers, were taken by `bouncer check` without a word, and then matched nothing (origins and
// headers are compared exactly, by name): every page of the subdomains, and every preflight that
// named a header, was refused (403 cors_origin_denied "(allowed: *)"), with the config saying
// otherwise. They are refused where they are written, saying what to write instead.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const UPSTREAM = 'upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\n'

function route(cors: string) {
  const loaded = loadConfigText(`${UPSTREAM}routes: [{ id: r, path: /r, upstream: api, methods: [GET], public: true, cors: ${cors} }]\n`, 'bouncer.yaml', {})
  return loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('routes[].cors wildcards', () => {
  it('refuses an origin pattern, which no browser\'s Origin ever equals', () => {
    for (const origin of ['https://*.example.com', 'https://*', 'http://*:8080', 'https://app.*.example.com']) {
      const lines = route(`{ origins: ["${origin}"] }`)
      expect(lines, origin).toHaveLength(1)
      expect(lines[0], origin).toContain(`origin "${origin}" is a pattern: origins are compared exactly, as browsers send them; list each one (https://app.example.com), or "*" for any`)
    }
  })

  it('refuses * among the headers, which the gateway grants by name', () => {
    const lines = route('{ origins: ["https://app.example.com"], headers: ["*"] }')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('routes[0].cors.headers[0]: "*" would match no header: a preflight is granted the headers listed, by name; list each one a page sends (authorization, content-type)')
  })

  it('still takes exact origins, "*", and headers by name', () => {
    expect(route('{ origins: ["https://app.example.com", "https://[::1]:8443"], headers: [content-type, X-Api-Key] }')).toEqual([])
    expect(route('{ origins: ["*"] }')).toEqual([])
  })
})

// Found by the access probe: a route taking a session cookie (or a client certificate) whose cors
// lists a state-changing method with `credentials: true` had its preflight for that method granted,
// and then the request itself refused 403 cors_origin_denied by the cross-site request forgery check
// (only the gateway's own pages change state with such a credential: docs/people.md). bouncer check
// said nothing of the contradiction; it now warns at the method, saying what to do instead.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function warnings(route: string): string[] {
  const text = `upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\nroutes: [{ id: r, path: /r, upstream: api, ${route} }]\n`
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)).filter((line) => line.includes('warning: routes[0].cors'))
}

const CORS = (methods: string, credentials = true) => `cors: { origins: ["https://app.example.com"], methods: [${methods}], credentials: ${credentials} }`

describe('a credentialed cors grant of a state-changing method', () => {
  it('on a route taking session cookies or client certificates is a warning at that method', () => {
    expect(warnings(`accept: [session], ${CORS('GET, POST, DELETE')}`)).toEqual([
      'bouncer.yaml:2:124: warning: routes[0].cors.methods[1]: a POST from another origin carried by a session cookie is refused 403 cors_origin_denied (cross-site request forgery protection) whatever cors grants: only the gateway\'s own pages change state with it; have such pages send a bearer token (accept: [bearer]) or call the gateway from its own origin',
      'bouncer.yaml:2:130: warning: routes[0].cors.methods[2]: a DELETE from another origin carried by a session cookie is refused 403 cors_origin_denied (cross-site request forgery protection) whatever cors grants: only the gateway\'s own pages change state with it; have such pages send a bearer token (accept: [bearer]) or call the gateway from its own origin',
    ])
    expect(warnings(`accept: [bearer, client_cert], ${CORS('PUT')}`)).toEqual([
      'bouncer.yaml:2:131: warning: routes[0].cors.methods[0]: a PUT from another origin carried by a client certificate is refused 403 cors_origin_denied (cross-site request forgery protection) whatever cors grants: only the gateway\'s own pages change state with it; have such pages send a bearer token (accept: [bearer]) or call the gateway from its own origin',
    ])
  })

  it('is no warning without credentials, for safe methods, or on a route taking bearer tokens only', () => {
    expect(warnings(`accept: [session], ${CORS('POST', false)}`)).toEqual([])
    expect(warnings(`accept: [session], ${CORS('GET, HEAD, OPTIONS')}`)).toEqual([])
    expect(warnings(`accept: [bearer, api_key], ${CORS('POST')}`)).toEqual([])
  })
})

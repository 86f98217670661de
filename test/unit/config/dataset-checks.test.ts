// bouncer check on datasets: the loader refuses what would fail (or leak) at the first request.
import { describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { loadSecrets } from '../../../src/secrets/open.ts'

function findings(route: string, extra = '') {
  const loaded = loadConfigText(`datasources:\n  - { name: wh, type: sqlite, path: ./x.db }\n${extra}routes:\n${route}`, 'bouncer.yaml', {})
  return {
    errors: loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    warnings: loaded.diagnostics.filter((d) => d.severity === 'warning').map((d) => d.message),
  }
}

describe('dataset checks', () => {
  it('refuses an unknown datasource', () => {
    expect(findings('  - { id: d, path: /d, methods: [GET], dataset: { source: nope, sql: "SELECT 1" } }\n').errors).toContain('unknown datasource "nope"')
  })

  it('refuses a parameter named like the gateway\'s own (format, cursor)', () => {
    const { errors } = findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT :format AS f", params: { format: { type: string } } } }\n')
    expect(errors).toContain('"format" is read by the gateway itself (?format=, ?cursor=): name the parameter otherwise')
  })

  it('refuses identity placeholders on a public route, and principal fields it does not bind', () => {
    expect(findings('  - { id: d, path: /d, public: true, methods: [GET], dataset: { source: wh, sql: "SELECT :claims.tenant AS t" } }\n').errors)
      .toContain(':claims.tenant binds the caller\'s identity, but route "d" is public: it has none')
    expect(findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT :principal.email AS e" } }\n').errors)
      .toContain(':principal.email is not bound: the caller is :principal.sub, :claims.NAME or :roles')
  })

  it('refuses an enum without values, and min/max that do not fit the type', () => {
    const { errors } = findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT :a, :b, :c", params: { a: { type: enum }, b: { type: bool, min: 1 }, c: { type: int, max: "-1d" } } } }\n')
    expect(errors).toEqual(expect.arrayContaining(['an enum parameter needs its values', 'min and max do not apply to type bool', 'min and max of a int parameter are numbers']))
  })

  it('refuses a literal that never ends, a second statement and a list bound to a path segment', () => {
    expect(findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT \'open" } }\n').errors).toContain('a string literal never ends')
    expect(findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT 1; SELECT 2" } }\n').errors).toContain('the sql holds 2 statements: a dataset runs exactly one')
    expect(findings('  - { id: d, path: "/d/:ids", methods: [GET], dataset: { source: wh, sql: "SELECT :ids", params: { ids: { type: int, list: true } } } }\n').errors).toContain('a path parameter holds one value, not a list')
  })

  it('warns about a parameter the sql does not use, an unknown mask role and a hash mask without a key', () => {
    const { warnings } = findings('  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT email FROM t", params: { a: { type: string } }, masks: { email: { with: hash, unless_roles: [ghost] } } } }\n')
    expect(warnings).toEqual(expect.arrayContaining([
      'parameter "a" is not used in the sql',
      'unknown role "ghost"',
      'datasource "wh" has no key: hashes change on every start, so they cannot be joined across days (set datasources[].key)',
    ]))
  })

  // Found by an adversarial probe (helper): two ways a masked column's values leak that only the config shows.
  it('warns about paging by a masked column and a parameter compared with one, and not about a parameter beside it', () => {
    const masks = 'masks: { customer_email: { with: hash, unless_roles: [] } }'
    const { warnings } = findings(`  - { id: d, path: /d, methods: [GET], dataset: { source: wh, page_size: 10, key: Customer_Email, sql: "SELECT c.customer_email, region FROM t c WHERE region = :region AND (:email::text IS NULL OR c.customer_email = :email) AND customer_email LIKE :q", params: { region: { type: string }, email: { type: string }, q: { type: string } }, ${masks} } }\n`)
    expect(warnings).toEqual(expect.arrayContaining([
      'the dataset pages by the masked column "customer_email": its rows come in the order of the real values, which callers who see it masked can read; page by a column they may see',
      'parameter "email" is compared with the masked column "customer_email" in the sql: a caller who sees it masked can test guesses of its values by whether rows come back',
      'parameter "q" is compared with the masked column "customer_email" in the sql: a caller who sees it masked can test guesses of its values by whether rows come back',
    ]))
    expect(warnings.filter((w) => w.includes('"region"'))).toEqual([])
    const reversed = findings(`  - { id: d, path: /d, methods: [GET], dataset: { source: wh, sql: "SELECT id FROM t WHERE :e = customer_email", params: { e: { type: string } }, ${masks} } }\n`).warnings
    expect(reversed.some((w) => w.startsWith('parameter "e" is compared'))).toBe(true)
  })

  it('refuses a datasource secret outside url and key, and accepts one in them', () => {
    const loaded = loadConfigText('datasources:\n  - { name: wh, type: postgres, url: "postgres://r:${secret:pw}@h/db", key: "${secret:k}" }\n  - { name: s, type: sqlite, path: "${secret:p}" }\nsecrets: { store: { type: env } }\n', 'bouncer.yaml', {})
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.join('.')}: ${d.message}`)
    expect(errors).toEqual(['datasources.1.path: ${secret:p} may only stand in one of: an upstream\'s headers, admin.token, admin.read_token, an issuer\'s introspection.client_secret, sign_in.client_secret, token_exchange.signing.key, a datasource\'s url, a datasource\'s key, an MCP server\'s headers, a function\'s environment'])
  })

  // A docs probe: the schema asks 16 characters of a key written in the file, and said a secret's
  // value was checked when resolved; it was not (BOUNCER_SECRET_DATASET_KEY=short passed check and serve).
  it('refuses a datasource key from the secrets store shorter than 16 characters, naming its length only', () => {
    const text = 'datasources:\n  - { name: wh, type: postgres, url: "postgres://r@h/db", key: "${secret:dataset-key}" }\nsecrets: { store: { type: env } }\n'
    const read = (value: string) => {
      const env = { BOUNCER_SECRET_DATASET_KEY: value }
      const { diagnostics, store } = loadSecrets(loadConfigText(text, 'bouncer.yaml', env), env)
      store?.close()
      return diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`)
    }
    expect(read('short')).toEqual(['datasources.0.key: secret "dataset-key" is 5 characters: a datasource\'s key is at least 16'])
    expect(read('sixteen-chars-ok')).toEqual([])
  })
})

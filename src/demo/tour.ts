// The scripted tour `bouncer demo` runs once: real tokens from the provider (openid-client's
// client-credentials grant), real requests through the gateway (undici), and the audit log read
// back, each step printed with what the gateway answered and why. Then the curl lines to repeat it.
import { join, relative } from 'node:path'
import { generateKeyPair, importJWK, SignJWT, type JWK } from 'jose'
import * as client from 'openid-client'
import { request } from 'undici'
import { formatAuditTable, searchAudit } from '../audit/index.ts'
import { DEMO_AUDIENCE, DEMO_CLIENTS, DEMO_CONFIG, DEMO_DEFAULT_DATA_DIR, type RunningDemo } from './run.ts'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Record<string, unknown>
}

async function get(url: string, token: string): Promise<Answer> {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    body = { text }
  }
  return { status: res.statusCode, headers: res.headers, body }
}

async function clientToken(issuer: string, account: { clientId: string; secret: string }): Promise<string> {
  const config = await client.discovery(new URL(issuer), account.clientId, account.secret, undefined, { execute: [client.allowInsecureRequests] })
  return (await client.clientCredentialsGrant(config, { resource: DEMO_AUDIENCE })).access_token
}

async function signed(key: JWK, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, 'ES256'))
}

const refusal = (a: Answer) => `${a.status} ${String(a.body.code)}: ${String(a.body.detail)}`

/** A path to show in a command line: relative to where the user is, when that is shorter. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel.startsWith('..') ? path : rel
}

export async function runTour(demo: RunningDemo, print: (line?: string) => void): Promise<void> {
  const gw = demo.gateway.url
  const startedAt = new Date()
  print('The tour (it just ran; every request went through the gateway):')
  print()

  print(`1. looker-reports (a BI tool's scheduled reports) gets a token with the client-credentials grant`)
  print('   and fetches today\'s EU report:')
  const reportsToken = await clientToken(demo.issuer, DEMO_CLIENTS.reports)
  const report = await get(`${gw}/reports/daily/eu`, reportsToken)
  const who = report.body.requested_by as { subject?: string; roles?: string[] } | undefined
  print(`   GET /reports/daily/eu → ${report.status}, ${(report.body.hours as unknown[] | undefined)?.length ?? 0} hourly rows generated at ${String(report.body.generated_at)};`)
  print(`   the data API verified X-Bouncer-Assertion: caller ${who?.subject ?? '?'} with roles ${JSON.stringify(who?.roles ?? [])}`)
  print()

  print('2. analytics-agent (an AI agent) asks for customer records, which hold PII:')
  const agentToken = await clientToken(demo.issuer, DEMO_CLIENTS.agent)
  const pii = await get(`${gw}/customers`, agentToken)
  print(`   GET /customers → ${refusal(pii)}`)
  print()

  print('3. analytics-agent fires 15 requests at once (its limit: bursts of 10, then 5/s):')
  const burst = await Promise.all(Array.from({ length: 15 }, () => get(`${gw}/reports/daily/us`, agentToken)))
  const throttled = burst.find((a) => a.status === 429)
  const counts = new Map<number, number>()
  for (const a of burst) counts.set(a.status, (counts.get(a.status) ?? 0) + 1)
  print(`   GET /reports/daily/us ×15 → ${[...counts].map(([status, n]) => `${n} × ${status}`).join(', ')}`)
  if (throttled) print(`   ${throttled.status} ${String(throttled.body.code)} with Retry-After: ${String(throttled.headers['retry-after'])} (and RateLimit: ${String(throttled.headers['ratelimit'])})`)
  print()

  print('4. a token from an identity provider the gateway does not trust:')
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const now = Math.floor(Date.now() / 1000)
  const foreign = await new SignJWT({ sub: 'looker-reports', client_id: 'looker-reports', aud: DEMO_AUDIENCE, iss: 'https://login.unknown-idp.example/', iat: now, exp: now + 300 })
    .setProtectedHeader({ alg: 'ES256', kid: 'someone-else' })
    .sign(privateKey)
  print(`   GET /reports/daily/eu → ${refusal(await get(`${gw}/reports/daily/eu`, foreign))}`)
  print()

  print('5. a token the demo provider signed, which expired ten minutes ago:')
  const expired = await signed(demo.providerKey, { iss: demo.issuer, sub: 'looker-reports', client_id: 'looker-reports', aud: DEMO_AUDIENCE, iat: now - 1_200, exp: now - 600 })
  print(`   GET /reports/daily/eu → ${refusal(await get(`${gw}/reports/daily/eu`, expired))}`)
  print()

  print('6. the audit log has all of it (bouncer audit --since 1m):')
  await new Promise((r) => setTimeout(r, 400)) // records reach SQLite within the 100 ms flush interval
  const records = await searchAudit({ type: 'sqlite', path: join(demo.dataDir, 'audit.db') }, { sinceMs: startedAt.getTime(), limit: 25 })
  for (const line of formatAuditTable(records).split('\n')) print(`   ${line}`)
  print()

  const configFlag = `--config ${shown(DEMO_CONFIG)}`
  // The config's defaults are the demo's default ports and the checkout's data/; anything else is
  // said on the line (a data directory in full: the config reads relative paths from its own folder).
  const env = [
    ...(demo.dataDir === DEMO_DEFAULT_DATA_DIR ? [] : [`DEMO_DATA_DIR=${demo.dataDir}`]),
    ...(demo.issuer === 'http://127.0.0.1:9400' ? [] : [`DEMO_ISSUER=${demo.issuer}`]),
  ]
  const envPrefix = env.map((e) => `${e} `).join('')
  const tokenOf = (account: { clientId: string; secret: string }) =>
    `$(curl -s -u ${account.clientId}:${account.secret} -d grant_type=client_credentials -d resource=${DEMO_AUDIENCE} ${demo.issuer}/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`
  print('Try it by hand:')
  print(`  REPORTS=${tokenOf(DEMO_CLIENTS.reports)}`)
  print(`  AGENT=${tokenOf(DEMO_CLIENTS.agent)}`)
  print(`  curl -s -H "Authorization: Bearer $REPORTS" ${gw}/reports/daily/eu          # 200, fresh data`)
  print(`  curl -s -H "Authorization: Bearer $REPORTS" ${gw}/exports/orders.csv        # 200, CSV`)
  print(`  curl -s -H "Authorization: Bearer $AGENT" ${gw}/customers                   # 403 DenyCustomerPII`)
  print(`  curl -s ${gw}/reports/daily/eu                                              # 401 missing_token`)
  print(`  ${envPrefix}npx bouncer audit ${configFlag} --since 10m`)
  print(`  ${envPrefix}npx bouncer explain ${configFlag} --method GET --path /customers --claims '{"iss":"${demo.issuer}","sub":"analytics-agent","client_id":"analytics-agent"}'`)
}

/** Where the console is, and how to get the token that signs in to it (printed, never the token itself). */
export function consoleLine(demo: RunningDemo): string {
  const prefix = demo.dataDir === DEMO_DEFAULT_DATA_DIR ? '' : `DEMO_DATA_DIR=${demo.dataDir} `
  return `console on ${demo.gateway.adminUrl}/ (sign in with the admin token: ${prefix}npx bouncer secrets get admin-token --reveal --config ${shown(DEMO_CONFIG)})`
}

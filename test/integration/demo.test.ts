// `npm start` runs `bouncer demo`: on a fresh machine it must start a real OpenID provider, the data
// API and the gateway, run the tour with the statuses the README promises, print curl lines that
// work as printed, keep its master key and secrets for the next run, and stop cleanly on Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_CONFIG } from '../../src/demo/run.ts'
import { BIN } from '../helpers/cli.ts'

let cwd: string
/** Demos still running: a failed test's is killed here, not left behind (its data directory is deleted). */
const running = new Set<ChildProcess>()

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'bouncer-demo-'))
})
afterEach(async () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) await stop(child, 'SIGKILL')
  running.clear()
})
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true })
})

async function startDemo(extra: string[] = []): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--admin-port', '0', '--idp-port', '0', ...extra], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  await expect.poll(() => stdout, { timeout: 30_000, interval: 100 }).toContain('Ctrl-C stops everything')
  expect(stderr).toBe('') // a clean screen: no warnings, no stack traces
  return { child, output: () => stdout }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  child.kill(signal)
  const [code] = (await once(child, 'exit')) as [number | null]
  return code
}

/** Runs lines printed by the demo in bash, as a user pasting them would. */
function bash(script: string): string {
  const result = spawnSync('bash', ['-c', script], { cwd, encoding: 'utf8', timeout: 20_000 })
  expect(result.status, result.stderr).toBe(0)
  return result.stdout
}

describe('bouncer demo', () => {
  it('runs the tour with the promised answers, prints curl lines that work, and stops cleanly on Ctrl-C', { timeout: 60_000 }, async () => {
    const { child, output } = await startDemo()
    const out = output()
    expect(out).toMatch(/first run: generated a master key in .*data\/master\.key/)
    expect((await stat(join(cwd, 'data', 'master.key'))).mode & 0o777).toBe(0o600)
    // Every account the tour signs in with: the line named two of the three service accounts, and not alice.
    expect(out).toMatch(/^OpenID provider on http:\/\/127\.0\.0\.1:\d+ \(service accounts looker-reports, analytics-agent and finance-analyst; person alice\)$/m)

    // The tour's steps, with the statuses and reasons the issue asks for.
    expect(out).toMatch(/GET \/reports\/daily\/eu → 200, \d+ hourly rows generated at \d{4}-/)
    expect(out).toContain('the data API verified X-Bouncer-Assertion: caller looker-reports with roles ["reports"]')
    expect(out).toContain('GET /customers → 403 policy_denied: Statement "DenyCustomerPII" of policy "no-pii" denies GET on route "customers".')
    // The orders dataset as CSV: the agent sees the emails' domains only, finance the emails.
    expect(out).toMatch(/analytics-agent: GET \/datasets\/orders\?region=eu&format=csv → 200, \d+ rows; emails masked:\n +id,region,customer_email,total,created_at\n +\d+,eu,\*\*\*@[a-z.]+,/)
    expect(out).toMatch(/finance-analyst \(role finance\): the same request → 200; emails as they are:\n +id,region,customer_email,total,created_at\n +\d+,eu,[a-z]+\.\d+@[a-z.]+,/)
    // A burst of 15 against bursts of 10 refilling at 5/s: at least 10 pass, and the rest (unless the
    // machine is so slow the refill catches up) are throttled.
    const [, passed, throttled] = (/GET \/reports\/daily\/us ×15 → (\d+) × 200, (\d+) × 429/.exec(out) ?? []).map(Number)
    expect(passed).toBeGreaterThanOrEqual(10)
    expect(throttled).toBeGreaterThanOrEqual(1)
    expect((passed as number) + (throttled as number)).toBe(15)
    expect(out).toMatch(/429 rate_limited with Retry-After: \d+/)
    expect(out).toContain('401 issuer_unknown: No configured issuer has iss "https://login.unknown-idp.example/".')
    // auth_failures: a burst of 10 failures, the 11th finds the bucket empty (still checked: 401), the 12th is held back.
    expect(out).toContain('GET /reports/daily/eu ×12 → 11 × 401 issuer_unknown, 1 × 429 rate_limited')
    expect(out).toMatch(/held back \(auth_failures: bursts of 10 failures, then 10\/m per address\): its tokens are no longer read, Retry-After: \d+/)
    expect(out).toMatch(/401 token_expired: The token expired at /)
    // The agent over MCP: only its tools listed, the PII tool refused, the export approved and run once.
    expect(out).toContain('tools/list → get_daily_report, export_orders (list_customers is not offered: its route holds PII)')
    expect(out).toContain('tools/call list_customers → refused: Unknown tool: list_customers')
    expect(out).toMatch(/tools\/call export_orders → pending_approval [0-9a-f-]{36}/)
    expect(out).toMatch(/approves it → approved \(POST \/api\/approvals\/[0-9a-f-]{36}\/approve on the admin API; by hand, README "Approvals"\)/)
    // The data API's export: a header, then one row per region (eu, us, apac); the header was counted as a row.
    expect(out).toContain('tools/call export_orders again → ran once: 3 CSV rows')
    // The audit table read back from SQLite has every one of those requests.
    const table = out.slice(out.indexOf('8. the audit log'), out.indexOf('Try it by hand'))
    expect(table).toMatch(/ 403 +deny +POST \/mcp +mcp:list_customers +analytics-agent +policy_denied/)
    expect(table).toMatch(/ 200 +allow +GET \/exports\/orders\.csv +exports\.csv +analytics-agent/)
    expect(table.match(/ 429 +deny +GET \/reports\/daily\/us .*rate_limited \(per-principal\)/g)).toHaveLength(throttled as number)
    expect(table).toMatch(/ 403 +deny +GET \/customers +customers +analytics-agent +policy_denied \(DenyCustomerPII\)/)
    expect(table).toMatch(/ 401 +deny .*token_expired/)
    expect(table).toMatch(/ 401 +deny .*issuer_unknown/)
    expect(table).toMatch(/ 429 +deny +GET \/reports\/daily\/eu .*rate_limited \(auth_failures\)/)
    expect(table).toMatch(/ 200 +allow +GET \/reports\/daily\/eu +reports\.daily +looker-reports/)

    // The curl lines, pasted as printed.
    const lines = out.slice(out.indexOf('Try it by hand:')).split('\n').slice(1).map((l) => l.trim())
    const tokens = lines.filter((l) => /^(REPORTS|AGENT)=/.test(l)).join('\n')
    const curls = lines.filter((l) => l.startsWith('curl ')).map((l) => l.replace(/\s+#.*$/, ''))
    expect(curls).toHaveLength(4)
    const answers = curls.map((curl) => bash(`${tokens}\n${curl}`))
    expect(JSON.parse(answers[0] as string)).toMatchObject({ region: 'eu', requested_by: { subject: 'looker-reports' } })
    expect(answers[1]).toMatch(/^region,orders_today,as_of\n/)
    expect(JSON.parse(answers[2] as string)).toMatchObject({ status: 403, code: 'policy_denied' })
    expect(JSON.parse(answers[3] as string)).toMatchObject({ status: 401, code: 'missing_token' })

    // The audit and explain lines, with this checkout's bouncer for `npx bouncer`.
    const cli = lines.filter((l) => l.includes('npx bouncer')).map((l) => l.replace('npx bouncer', `${process.execPath} ${BIN}`))
    expect(cli).toHaveLength(2)
    expect(bash(cli[0] as string)).toMatch(/403 +deny +GET \/customers/)
    expect(bash(`${cli[1]} || test $? -eq 1`)).toMatch(/DENY: 403 policy_denied: Statement "DenyCustomerPII"/)

    // Around the gateway, the data API answers nobody: no credential, or a credential without an assertion.
    const api = /demo data API on (\S+)/.exec(out)?.[1] as string
    expect(JSON.parse(bash(`curl -s ${api}/v1/customers`))).toMatchObject({ error: expect.stringContaining('only answers the gateway') })
    const stolen = bash(`curl -s -H "Authorization: Bearer not-the-credential" ${api}/v1/customers`)
    expect(JSON.parse(stolen)).toMatchObject({ error: expect.stringContaining('wrong or missing credential') })
    // The config reads its relative paths from its own folder: this demo's data dir is in the temporary cwd.
    const credential = bash(`DEMO_DATA_DIR=${join(cwd, 'data')} ${process.execPath} ${BIN} secrets get data-api-token --reveal --config ${DEMO_CONFIG}`).trim()
    const noAssertion = bash(`curl -s -H "Authorization: Bearer ${credential}" ${api}/v1/customers`)
    expect(JSON.parse(noAssertion)).toMatchObject({ error: expect.stringContaining('no valid X-Bouncer-Assertion') })

    // The console's Denials page decides the tour's refused and held tool calls again as tools/call
    // does: it said "would be allowed" for both, explaining them as POST /mcp on the MCP endpoint's
    // public route. The held call is allowed by the policies, and held for approval (202).
    const adminUrl = /admin listening on (\S+)/.exec(out)?.[1] as string
    const adminToken = bash(`DEMO_DATA_DIR=${join(cwd, 'data')} ${process.execPath} ${BIN} secrets get admin-token --reveal --config ${DEMO_CONFIG}`).trim()
    const denials = JSON.parse(bash(`curl -s -H "Authorization: Bearer ${adminToken}" '${adminUrl}/api/denials?since=15m'`)) as Array<{ route: string; explanation: { effect: string; status: number }; explained_under: { agrees: boolean } }>
    expect(denials.find((g) => g.route === 'mcp:list_customers')).toMatchObject({ explanation: { effect: 'deny', status: 403 }, explained_under: { agrees: true } })
    expect(denials.find((g) => g.route === 'mcp:export_orders')).toMatchObject({ explanation: { effect: 'allow', status: 202 }, explained_under: { agrees: true } })

    expect(await stop(child, 'SIGINT')).toBe(0)
  })

  it('keeps its master key and secrets for the next run', { timeout: 60_000 }, async () => {
    const { child, output } = await startDemo(['--no-tour'])
    expect(output()).toMatch(/secrets: the master key in .*data\/master\.key opened .*data\/secrets\.db/)
    expect(output()).not.toContain('The tour')
    const gateway = /gateway listening on (\S+)/.exec(output())?.[1] as string
    const issuer = /OpenID provider on (\S+)/.exec(output())?.[1] as string
    const report = bash(`TOKEN=$(curl -s -u looker-reports:looker-reports-demo-secret -d grant_type=client_credentials -d resource=api://bouncer-demo ${issuer}/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
curl -s -H "Authorization: Bearer $TOKEN" ${gateway}/reports/daily/eu`)
    expect(JSON.parse(report)).toMatchObject({ region: 'eu' }) // the data API accepts the stored credential

    // The console's address, and a line that reveals the token it signs in with.
    const [, consoleUrl, reveal] = /console on (\S+) \(sign in as alice, password alice-demo-password, to read; with the admin token to change things: (.+)\)/.exec(output()) ?? []
    expect(bash(`curl -s ${consoleUrl}`)).toContain('<div id="app">')
    // The person signs in at the demo provider, which knows the console's callback.
    const signIn = bash(`curl -s -o /dev/null -w '%{http_code} %{redirect_url}' '${consoleUrl}.bouncer/sign_in?return_to=/'`)
    expect(signIn).toMatch(new RegExp(`^302 ${issuer}/auth\\?`))
    const redirect = new URL(signIn.split(' ')[1] as string).searchParams.get('redirect_uri')
    expect(redirect).toBe(`${consoleUrl}.bouncer/callback`)
    expect(bash(`curl -s -o /dev/null -w '%{http_code}' -L -c /dev/null '${signIn.split(' ')[1]}'`)).toBe('200') // its login page
    const adminToken = bash((reveal as string).replace('npx bouncer', `${process.execPath} ${BIN}`)).trim()
    expect(JSON.parse(bash(`curl -s -H "Authorization: Bearer ${adminToken}" ${consoleUrl}api/session`))).toMatchObject({ access: 'admin' })

    // A request target Node's parser takes but URL refuses was an unhandled rejection in the data
    // API's handler, which ended the whole demo: now a 400, and the demo goes on.
    const api = new URL(/demo data API on (\S+)/.exec(output())?.[1] as string)
    const socket = connect(Number(api.port), '127.0.0.1').setTimeout(5_000, () => socket.destroy())
    socket.end('GET http://a:99999/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    let answer = ''
    for await (const chunk of socket) answer += String(chunk)
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(child.exitCode).toBeNull()
    expect(bash(`curl -s -o /dev/null -w '%{http_code}' ${/admin listening on (\S+)/.exec(output())?.[1]}/healthz`)).toBe('200')
    expect(await stop(child, 'SIGTERM')).toBe(0)
  })
})

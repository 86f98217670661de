// The transparent mode: one upstream MCP server with `prefix: false`. The MCP conformance suite
// (its `server` scenarios, all of them) run through the gateway gives the same result, check by
// check, as run against server-everything directly — apart from the differences listed below,
// each of which is the gateway doing its job.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runConformance, withBearer, type BearerHop } from '../helpers/conformance.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startEverything, type RunningMcpServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let everything: RunningMcpServer
let gateway: TestGateway
let hop: BearerHop
let dir: string

beforeAll(async () => {
  ;[idp, everything] = await Promise.all([startIdentityProvider(), startEverything()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-conformance-'))
  const config = mcpTestConfig(idp.issuer, 'http://127.0.0.1:9', dir, { tools: [], servers: [{ name: 'everything', url: everything.url, prefix: false }] })
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  // looker-reports holds `call` on mcp:* (tools, and mcp:resources, mcp:prompts, mcp:completions).
  hop = await withBearer(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }))
  // Browsers on the hop's origin may call (the suite checks that a valid Origin is taken).
  await gateway.writeConfig({ ...config, mcp: { ...config.mcp, allowed_origins: [new URL(hop.url).origin] } })
  expect((await gateway.reload()).ok).toBe(true)
}, 90_000)

afterAll(async () => {
  await hop?.close()
  await gateway?.close()
  await Promise.all([everything?.close(), idp?.stop()])
  if (!process.env.KEEP_CONFORMANCE) await rm(dir, { recursive: true, force: true })
  else console.log(dir)
})

it('runs the conformance suite through the gateway with the same results as directly', async () => {
  const direct = await runConformance(everything.url, join(dir, 'direct'))
  const through = await runConformance(hop.url, join(dir, 'through'))
  expect(Object.keys(through).sort()).toEqual(Object.keys(direct).sort())
  expect(Object.keys(direct).length).toBeGreaterThan(25)
  const differences: Record<string, { direct: Record<string, string[]>; through: Record<string, string[]> }> = {}
  for (const scenario of Object.keys(direct)) {
    if (JSON.stringify(direct[scenario]) !== JSON.stringify(through[scenario])) differences[scenario] = { direct: direct[scenario]!, through: through[scenario]! }
  }
  expect(differences).toEqual(EXPECTED_DIFFERENCES)
}, 300_000)

const EXPECTED_DIFFERENCES = {
  // The gateway refuses an Origin that is neither the resource's nor listed; server-everything
  // takes any Host/Origin (DNS rebinding). Through the gateway both checks pass.
  'dns-rebinding-protection': {
    direct: { 'localhost-host-rebinding-rejected': ['FAILURE'], 'localhost-host-valid-accepted': ['SUCCESS'] },
    through: { 'localhost-host-rebinding-rejected': ['SUCCESS'], 'localhost-host-valid-accepted': ['SUCCESS'] },
  },
}

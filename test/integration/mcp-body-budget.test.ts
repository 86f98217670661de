// The MCP endpoint holds a POST's body whole (parsed, and a copy for the SDK's Request), up to
// server.max_body_bytes. JSON and form bodies the pipeline reads count against
// server.form_body_total_bytes, as functions' do; a POST to /mcp of another type (text/plain) did
// not: it was read and held outside any bound, as many at once as connections. Now it takes its
// share before it is read, and one past the total waits, unread.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, it } from 'vitest'
import { formBudget } from '../../src/gateway/form-budget.ts'
import { MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const BODY = 1_000_000
let setup: McpTestSetup
let token: string

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-body-budget', (config) => ({ ...config, server: { max_body_bytes: BODY, form_body_total_bytes: 1_500_000 } }))
  token = await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

/** A text/plain POST to /mcp of `BODY` bytes, its first 70,000 sent (past the 64 KiB the gateway waits for before it routes); `leave` closes it. */
function slowPost(): { leave(): Promise<void> } {
  const socket: Socket = connect(Number(new URL(setup.gateway.url).port), '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`POST /mcp HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${BODY}\r\n\r\n${'x'.repeat(70_000)}`)
  return {
    async leave() {
      socket.destroy()
      await once(socket, 'close')
    },
  }
}

it('a text/plain POST to the MCP endpoint holds its share of form_body_total_bytes; one past it waits unread', async () => {
  // The budget is the process's: counted from what an earlier file of this worker may have left.
  const before = formBudget()
  const first = slowPost()
  await waitFor(() => formBudget().held === before.held + BODY, 'the first body holding its share')
  const second = slowPost()
  await waitFor(() => formBudget().waiting === before.waiting + 1, 'the second body waiting')
  await first.leave()
  await waitFor(() => formBudget().held === before.held + BODY && formBudget().waiting === before.waiting, 'the second body let in')
  await second.leave()
  await waitFor(() => formBudget().held === before.held && formBudget().waiting === before.waiting, 'every share given back')
})

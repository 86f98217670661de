// `bouncer approvals list | approve ID | deny ID`: pending tool calls of agents (mcp.approvals),
// decided through the running gateway's admin API. The admin token opens the API
// (BOUNCER_ADMIN_TOKEN, else a literal admin.token in the config); the approver proves who they
// are with their own bearer token (BOUNCER_APPROVER_TOKEN), whose roles must include an approver
// role. Tokens come from the environment, never from arguments other users could read (ps).
import { Option, type Command } from 'commander'
import { APPROVAL_STATUSES } from '../agents/index.ts'
import { listenUrl } from '../config/index.ts'
import { printable } from '../text/index.ts'
import { configOption, loadCommandConfig } from './config.ts'
import { UserError } from './user-error.ts'

interface Options {
  config?: string
  adminUrl?: string
  status?: string
  json?: boolean
}

interface ApprovalDocument {
  id: string
  tool: string
  subject: string
  status: string
  expires_at: string
  approvers: string[]
  decided_by: string | null
}

async function adminOf(opts: Options): Promise<{ url: string; token: string }> {
  if (opts.adminUrl !== undefined && !/^https?:$/.test(URL.parse(opts.adminUrl)?.protocol ?? '')) throw new UserError("--admin-url takes the admin listener's http:// or https:// URL", 2)
  const env = process.env
  let url = opts.adminUrl ?? env.BOUNCER_ADMIN_URL
  let token = env.BOUNCER_ADMIN_TOKEN
  if (url === undefined || token === undefined) {
    const { config } = await loadCommandConfig(opts.config)
    const { host, port } = config.admin.listen
    url ??= listenUrl(host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port)
    if (token === undefined && config.admin.token !== undefined && !config.admin.token.includes('${')) token = config.admin.token
  }
  if (token === undefined) throw new UserError('set BOUNCER_ADMIN_TOKEN to the admin token (admin.token)')
  return { url: url.replace(/\/$/, ''), token }
}

async function call(opts: Options, method: string, path: string, body?: unknown): Promise<unknown> {
  const admin = await adminOf(opts)
  let response: Response
  try {
    response = await fetch(`${admin.url}/api/${path}`, {
      method,
      headers: { authorization: `Bearer ${admin.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
  } catch (err) {
    throw new UserError(`the admin API at ${admin.url} does not answer (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`)
  }
  const text = await response.text()
  const parsed = (() => {
    try {
      return JSON.parse(text) as unknown
    } catch {
      return text
    }
  })()
  if (!response.ok) {
    const problem = parsed as { code?: string; detail?: string }
    throw new UserError(`${response.status} ${problem.code ?? ''}: ${problem.detail ?? text.slice(0, 300)}`)
  }
  return parsed
}

function line(a: ApprovalDocument): string {
  return [a.id, a.status.padEnd(8), a.tool, `by ${a.subject}`, `expires ${a.expires_at}`, `approvers ${a.approvers.join(',')}`, a.decided_by ? `decided by ${a.decided_by}` : ''].filter(Boolean).map(printable).join('  ')
}

export function registerApprovals(program: Command): void {
  const approvals = program.command('approvals').description('agents\' tool calls waiting for a person (mcp.approvals): list, approve, deny')
  const common = (command: Command) => configOption(command).option('--admin-url <url>', 'the admin listener (default: $BOUNCER_ADMIN_URL, else admin.listen of the config)')
  common(approvals.command('list').description('list approvals, newest first')
    // commander's choices: an unknown status is a usage error (exit 2) before the config is read.
    .addOption(new Option('--status <status>', 'only approvals in this status').choices(APPROVAL_STATUSES))
    .option('--json', 'JSON instead of lines'))
    .action(async (opts: Options) => {
      const list = (await call(opts, 'GET', `approvals${opts.status ? `?status=${encodeURIComponent(opts.status)}` : ''}`)) as ApprovalDocument[]
      if (opts.json) return console.log(JSON.stringify(list, null, 2))
      if (list.length === 0) return console.log('no approvals')
      for (const approval of list) console.log(line(approval))
    })
  for (const decision of ['approve', 'deny'] as const) {
    common(approvals.command(`${decision} <id>`).description(`${decision} a pending tool call, as the person whose token is in $BOUNCER_APPROVER_TOKEN`))
      .action(async (id: string, opts: Options) => {
        const token = process.env.BOUNCER_APPROVER_TOKEN
        if (!token) throw new UserError('set BOUNCER_APPROVER_TOKEN to your own bearer token: your roles decide whether you may approve')
        const approval = (await call(opts, 'POST', `approvals/${encodeURIComponent(id)}/${decision}`, { token })) as ApprovalDocument
        console.log(line(approval))
      })
  }
}

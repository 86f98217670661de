// `bouncer explain`: the decision for one request, offline (no listener, no key fetch). An API key
// given as --token is looked up in the config's key store, read only: explaining is not a use.
import type { Command } from 'commander'
import { isIP } from 'node:net'
import { isApiKeyBearer, isMethodToken, isRequestTargetForm } from '../http/index.ts'
import { configOption, loadCommandConfig } from './config.ts'
import { readStdin } from './stdin.ts'
import { UserError } from './user-error.ts'

interface ExplainOptions {
  method?: string
  path?: string
  tool?: string
  claims?: string
  token?: string
  clientCert?: boolean
  ip?: string
  form?: string
  jsonBody?: string
  config?: string
  json?: boolean
}

export function registerExplain(program: Command): void {
  configOption(program
    .command('explain')
    .description('explain the decision for one request, or one MCP tool call (--tool), offline (exit 0 allowed, 1 denied)')
    .option('--method <method>', 'HTTP method')
    .option('--path <path>', 'request path, e.g. /sales/daily/eu')
    .option('--tool <name>', 'an MCP tool call instead of a request: the tool as tools/call names it, e.g. get_daily_report or SERVER__TOOL')
    .option('--claims <json>', 'the identity\'s claims as JSON, e.g. \'{"iss":"…","sub":"svc-looker"}\'')
    .option('--token <token>', 'a token whose claims are used (its signature is not checked offline), or an API key (bk_…, checked against the key store); - reads it from stdin, which keeps a key out of ps and the shell history')
    .option('--client-cert', 'the --claims are a client certificate\'s identity: iss the subject DN of its CA, sub its URI SAN or CN (as the audit record keeps them)')
    .option('--ip <address>', 'client address for source_ip conditions', '127.0.0.1')
    .option('--form <body>', 'a POST\'s urlencoded form body, e.g. \'title=x&_method=DELETE\': its _method fields are read as the gateway reads them')
    .option('--json-body <body>', 'a POST\'s JSON body, e.g. \'{"title":"x","_method":"DELETE"}\': its top-level _method is read as the gateway reads it'))
    .option('--json', 'print the explanation as a JSON document')
    .action(async (opts: ExplainOptions) => {
      if (opts.claims !== undefined && opts.token !== undefined) throw new UserError('give --claims or --token, not both', 2)
      const { method, path, tool } = opts
      if (tool !== undefined && (method !== undefined || path !== undefined)) throw new UserError('give --tool (an MCP tool call) or --method and --path (a request), not both', 2)
      if (tool === undefined && (method === undefined || path === undefined)) {
        throw new UserError(method === undefined && path === undefined ? 'give --method and --path (a request), or --tool (an MCP tool call)' : `--${method === undefined ? 'method' : 'path'} is missing: a request is explained with --method and --path`, 2)
      }
      if (tool !== undefined && tool.trim() === '') throw new UserError('--tool needs the tool\'s name, e.g. get_daily_report', 2)
      if (tool !== undefined && opts.form !== undefined) throw new UserError('--form does not go with --tool: it is a POST\'s form body', 2)
      if (tool !== undefined && opts.jsonBody !== undefined) throw new UserError('--json-body does not go with --tool: it is a POST\'s JSON body', 2)
      // A request has one Content-Type: a form and a JSON body together are no request the gateway could see.
      if (opts.form !== undefined && opts.jsonBody !== undefined) throw new UserError('give --form or --json-body, not both: a request has one body, of one Content-Type', 2)
      if (tool !== undefined && opts.clientCert) throw new UserError('--client-cert does not go with --tool: the MCP endpoint takes bearer tokens only', 2)
      // A typo (the slash forgotten, an unset shell variable) explained as bad_path exited 1, "denied": a CI check of a denial passed on it.
      if (path !== undefined && !isRequestTargetForm(path)) throw new UserError(`--path must start with "/" (e.g. /sales/daily/eu), or be a whole URL (not ${JSON.stringify(path)})`, 2)
      if (method !== undefined && !isMethodToken(method)) throw new UserError(`--method must be an HTTP method, e.g. GET (not ${JSON.stringify(method)})`, 2)
      if (opts.clientCert && opts.claims === undefined) throw new UserError('--client-cert needs --claims: {"iss": the CA\'s subject DN, "sub": the URI SAN or CN}', 2)
      // A mistyped address matched no source_ip and read as a policy's denial.
      if (opts.ip !== undefined && isIP(opts.ip) === 0) throw new UserError(`--ip must be an IP address, e.g. 10.1.2.3 (not "${opts.ip}")`, 2)
      if (opts.token === '-') opts.token = await readStdin('printf %s "$KEY" | bouncer explain --token - …')
      else if (opts.token !== undefined && isApiKeyBearer(`Bearer ${opts.token}`)) {
        // Explained all the same, as keys revoke does: refusing would not take it back out of the history.
        console.error('warning: the whole key was given on the command line, so its secret is in this shell\'s history and was visible to ps; next time give --token - and the key on stdin')
      }
      let claims: Record<string, unknown> | undefined
      if (opts.claims !== undefined) {
        try {
          claims = JSON.parse(opts.claims) as Record<string, unknown>
        } catch {
          throw new UserError('--claims is not valid JSON', 2)
        }
        if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new UserError('--claims must be a JSON object', 2)
      }
      const loaded = await loadCommandConfig(opts.config)
      // The gateway (~190 modules) once the arguments and the config have passed: a usage error or a
      // config's own refusal costs what `bouncer check` does, not a gateway's start (1.0 s of CPU).
      const [{ compileRuntime, createRuntimeDeps, explainTool, explainWithKeys, formatExplanation, loadModulesFor }, { ApiKeyStoreError, createApiKeyDirectoryRegistry }, { createBackgroundTasks, createLogger }] =
        await Promise.all([import('../gateway/index.ts'), import('../identity/index.ts'), import('../telemetry/index.ts')])
      const settings = loaded.config.api_keys
      const logger = createLogger({ level: 'silent' })
      const deps = createRuntimeDeps(logger, { offline: true })
      await loadModulesFor(loaded.config)
      const runtime = compileRuntime(loaded.config, deps)
      // The offline runtime's key directory reads no store: an API key is looked up in the real one.
      const keyStores = settings && opts.token !== undefined && isApiKeyBearer(`Bearer ${opts.token}`)
        ? createApiKeyDirectoryRegistry(logger, { background: createBackgroundTasks(logger, { backgroundFailed() {} }) })
        : null
      try {
        let directory = runtime.apiKeys
        if (keyStores && settings) {
          try {
            directory = keyStores.acquire(settings)
          } catch (err) {
            if (err instanceof ApiKeyStoreError) throw new UserError(`the API key store cannot be opened: ${err.message}`)
            throw err
          }
        }
        const explanation = tool !== undefined
          ? await explainTool(runtime, { tool, claims, token: opts.token, ip: opts.ip })
          : await explainWithKeys(runtime, { method: method as string, path: path as string, claims, token: opts.token, ip: opts.ip, ...(opts.clientCert ? { credential: 'client_cert' as const } : {}), ...(opts.form !== undefined ? { form: opts.form } : {}), ...(opts.jsonBody !== undefined ? { json: opts.jsonBody } : {}) }, directory)
        console.log(opts.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation))
        process.exitCode = explanation.decision.effect === 'allow' ? 0 : 1
      } finally {
        await keyStores?.closeAll()
        await deps.closeAll()
      }
    })
}

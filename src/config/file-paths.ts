// Relative paths in a config start from the config file's folder, not from the directory the
// gateway was started in: `bouncer serve --config /etc/bouncer/bouncer.yaml` run from / (a systemd
// unit, a container's entrypoint) keeps ./data/audit.db next to the file, as whoever wrote it meant,
// and every command reading the same file (serve, audit, secrets) finds the same files. The defaults
// (./data/…) are paths in the config too. A rotation hook is a command, not a path: it is run as
// written, in the gateway's working directory. The PEM files of server.tls and x509 issuers resolve
// the same way.
import { isAbsolute, resolve } from 'node:path'
import type { Config } from './schema.ts'

export function resolveFilePaths(config: Config, baseDir: string): Config {
  const path = (value: string) => (isAbsolute(value) ? value : resolve(baseDir, value))
  const audit = {
    ...config.audit,
    sinks: config.audit.sinks.map((sink) => (sink.type === 'sqlite' ? { ...sink, path: path(sink.path) } : sink)),
    spill_dir: path(config.audit.spill_dir),
    checkpoint_path: config.audit.checkpoint_path === undefined ? undefined : path(config.audit.checkpoint_path),
  }
  const secrets = config.secrets && { ...config.secrets, store: storeWithPaths(config.secrets.store, path) }
  const upstreams = config.upstreams.map((upstream) => (upstream.tls ? { ...upstream, tls: tlsWithPaths(upstream.tls, path) } : upstream))
  const apiKeys = config.api_keys && (config.api_keys.store.type === 'sqlite' ? { ...config.api_keys, store: { ...config.api_keys.store, path: path(config.api_keys.store.path) } } : config.api_keys)
  const functions = config.functions.map((fn) => ({ ...fn, module: path(fn.module) }))
  const datasources = config.datasources.map((source) => (source.type === 'sqlite' ? { ...source, path: path(source.path) } : source))
  const tls = config.server.tls && {
    ...config.server.tls,
    cert: path(config.server.tls.cert),
    key: path(config.server.tls.key),
    client_ca: config.server.tls.client_ca === undefined ? undefined : path(config.server.tls.client_ca),
    client_crl: config.server.tls.client_crl === undefined ? undefined : path(config.server.tls.client_crl),
  }
  const server = tls ? { ...config.server, tls } : config.server
  const issuers = config.issuers.map((issuer) => (issuer.type !== 'x509' ? issuer : { ...issuer, ca: issuer.ca === undefined ? issuer.ca : path(issuer.ca) }))
  const mcp = config.mcp && { ...config.mcp, approvals_store: { ...config.mcp.approvals_store, path: path(config.mcp.approvals_store.path) } }
  const signIn = config.sign_in?.session.store.type === 'sqlite'
    ? { ...config.sign_in, session: { ...config.sign_in.session, store: { ...config.sign_in.session.store, path: path(config.sign_in.session.store.path) } } }
    : config.sign_in
  return { ...config, server, issuers, audit, secrets, upstreams, api_keys: apiKeys, functions, datasources, mcp, sign_in: signIn }
}

type SecretsStore = NonNullable<Config['secrets']>['store']

function storeWithPaths(store: SecretsStore, path: (value: string) => string): SecretsStore {
  switch (store.type) {
    case 'embedded': {
      const masterKey = store.master_key.startsWith('file:') ? `file:${path(store.master_key.slice('file:'.length))}` : store.master_key
      return { ...store, path: path(store.path), master_key: masterKey }
    }
    case 'file':
      return { ...store, dir: path(store.dir) }
    case 'env':
      return store
  }
}

type UpstreamTls = NonNullable<Config['upstreams'][number]['tls']>

function tlsWithPaths(tls: UpstreamTls, path: (value: string) => string): UpstreamTls {
  const optional = (value: string | undefined) => (value === undefined ? undefined : path(value))
  return { ...tls, ca: optional(tls.ca), cert: optional(tls.cert), key: optional(tls.key) }
}

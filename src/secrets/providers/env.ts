// Secrets kept in environment variables (a CI's or a platform's): `${secret:sales-api-token}` reads
// BOUNCER_SECRET_SALES_API_TOKEN (the prefix, then the name upper-cased with - and . as _). Read-only.
import { ReadOnlyStore, type SecretStore } from '../store.ts'

function envVariableFor(prefix: string, name: string): string {
  return `${prefix}${name.toUpperCase().replace(/[.-]/g, '_')}`
}

export function openEnvStore(prefix: string, env: NodeJS.ProcessEnv = process.env): SecretStore {
  return {
    kind: 'env',
    writable: false,
    get: (name, which = 'current') => (which === 'current' ? env[envVariableFor(prefix, name)] : undefined),
    notFound: (name) => `environment variable ${envVariableFor(prefix, name)} is not set`,
    marker: (name) => (env[envVariableFor(prefix, name)] === undefined ? undefined : 'env'),
    list: () => Object.keys(env).filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length).toLowerCase().replace(/_/g, '-')),
    versions: (name) => (env[envVariableFor(prefix, name)] === undefined ? [] : [{ version: 1, createdAt: '', label: 'current' }]),
    put() {
      throw new ReadOnlyStore('env')
    },
    delete() {
      throw new ReadOnlyStore('env')
    },
    close() {},
  }
}

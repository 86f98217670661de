// BOUNCER_LISTEN and BOUNCER_ADMIN_LISTEN: the container image's listen defaults. They replace the
// built-in loopback defaults only; an address the file gives wins.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const load = (text: string, env: NodeJS.ProcessEnv) => loadConfigText(text, 'bouncer.yaml', env)

describe('listen addresses from the environment', () => {
  it('stand in for the defaults when the file names no address', () => {
    const env = { BOUNCER_LISTEN: '0.0.0.0:8080', BOUNCER_ADMIN_LISTEN: '[::]:9090' }
    expect(load('{}\n', env).config).toMatchObject({ server: { listen: { host: '0.0.0.0', port: 8080 } }, admin: { listen: { host: '::', port: 9090 } } })
    expect(load('server:\n  max_body_bytes: 100\nadmin:\n  token: t\n', env).config).toMatchObject({
      server: { listen: { host: '0.0.0.0', port: 8080 }, max_body_bytes: 100 },
      admin: { listen: { host: '::', port: 9090 }, token: 't' },
    })
  })

  it('give way to an address the file gives, and leave the defaults alone when unset', () => {
    const config = load('server:\n  listen: 127.0.0.1:8081\n', { BOUNCER_LISTEN: '0.0.0.0:8080' }).config
    expect(config?.server.listen).toMatchObject({ host: '127.0.0.1', port: 8081 })
    expect(load('{}\n', {}).config).toMatchObject({ server: { listen: { text: '127.0.0.1:8080' } }, admin: { listen: { text: '127.0.0.1:9090' } } })
  })

  it('are checked like the file: a bad one is an error that names the variable', () => {
    const loaded = load('{}\n', { BOUNCER_LISTEN: 'everywhere' })
    expect(loaded.config).toBeUndefined()
    expect(loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toEqual([
      'bouncer.yaml:1:1: BOUNCER_LISTEN="everywhere" is not a listen address: write it like 0.0.0.0:8080 or [::]:8080',
    ])
  })
})

// The config's JSON Schema: the shipped file is what `bouncer schema` prints today, every example
// config points editors at it and conforms to it, and it agrees with the loader on what it can say.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { schemaText } from '../../src/cli/schema.ts'
import { configJsonSchema, loadConfigText } from '../../src/config/index.ts'
import { BIN, runCli } from '../helpers/cli.ts'
import { schemaErrors, type Schema } from '../helpers/json-schema.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SHIPPED = join(ROOT, 'schema/bouncer.schema.json')
const SCHEMA_LINE = /^# yaml-language-server: \$schema=(\S+)\n/

function exampleConfigs(dir = join(ROOT, 'examples')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return exampleConfigs(path)
    return name === 'bouncer.yaml' ? [path] : []
  })
}

const schema = configJsonSchema() as Schema
const errorsOf = (yaml: string) => schemaErrors(parse(yaml) ?? {}, schema)

describe('the config JSON Schema', () => {
  it('is current: schema/bouncer.schema.json is what bouncer schema prints (npm run schema writes it)', async () => {
    expect(readFileSync(SHIPPED, 'utf8')).toBe(schemaText())
    const printed = await runCli(['schema'])
    expect(printed).toMatchObject({ code: 0, stderr: '' })
    expect(printed.stdout).toBe(readFileSync(SHIPPED, 'utf8'))
  })

  it('ends quietly when its reader stops early (bouncer schema | head -1): exit 0, nothing on stderr', async () => {
    const child = spawn(process.execPath, [BIN, 'schema'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    // The reader goes away before the schema is written (head -c 0; head -1 once it has its line).
    child.stdout.destroy()
    const [code] = (await once(child, 'exit')) as [number | null]
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  })

  it('is draft 2020-12, closed like the loader (an unknown key is an error), with defaults', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(errorsOf('server: { listen: 127.0.0.1:8080 }\nsevrer: {}\n')).toEqual(['$.sevrer: not allowed (additionalProperties: false)'])
    expect(errorsOf('routes:\n  - { id: r, path: /x, upstream: api, publik: true }\n')).toEqual(['$.routes[0].publik: not allowed (additionalProperties: false)'])
    const server = (schema.properties as Record<string, Schema>).server as Schema
    expect((server.properties as Record<string, Schema>).request_timeout).toMatchObject({ default: '60s' })
  })

  it('writes durations, rates and listen addresses as the strings the loader parses, with patterns that agree with it', () => {
    const samples: Array<[string, string]> = [
      ['server:\n  request_timeout: ', '30s'], ['server:\n  request_timeout: ', '500ms'], ['server:\n  request_timeout: ', '30'],
      ['server:\n  request_timeout: ', '1.5s'], ['server:\n  request_timeout: ', '5 minutes'],
      ['server:\n  listen: ', '0.0.0.0:8080'], ['server:\n  listen: ', '"[::1]:9090"'], ['server:\n  listen: ', 'nowhere'],
      ['limits:\n  - { name: l, key: ip, rate: ', '10/s }'], ['limits:\n  - { name: l, key: ip, rate: ', '0/s }'], ['limits:\n  - { name: l, key: ip, rate: ', '10/week }'],
      ['server:\n  trusted_proxies: [', '10.0.0.0/8]'], ['server:\n  trusted_proxies: [', 'ten-dot]'],
    ]
    for (const [prefix, value] of samples) {
      const text = `${prefix}${value}\naudit: { sinks: [] }\n`
      const loaderAccepts = loadConfigText(text, 'sample.yaml', {}).config !== undefined
      expect(errorsOf(text).length === 0, `${value}: the loader ${loaderAccepts ? 'accepts' : 'refuses'} it`).toBe(loaderAccepts)
    }
  })

  // A refinement is code, lost in the JSON Schema: editors took a port of 65536, a /33 and a 0s
  // timeout that check refuses. Each sample is one check accepts or refuses, and the schema agrees.
  it('refuses the ports, prefix lengths and durations below their least that check refuses', () => {
    const issuer = (interval: string) => `issuers:\n  - { name: i, issuer: https://i/, audiences: [a], jwks_uri: https://i/jwks, jwks_refresh_interval: ${interval} }\n`
    const samples: Array<[string, boolean]> = [
      ['server:\n  listen: 127.0.0.1:65535\n', true], ['server:\n  listen: 127.0.0.1:65536\n', false],
      ['server:\n  listen: 127.0.0.1:99999\n', false], ['server:\n  listen: "[::1]:0"\n', true],
      ['admin:\n  listen: 127.0.0.1:70000\n', false], ['admin:\n  listen: 127.0.0.1:09090\n', true],
      ['server:\n  trusted_proxies: [10.0.0.0/32]\n', true], ['server:\n  trusted_proxies: [10.0.0.0/33]\n', false],
      ['server:\n  trusted_proxies: [10.0.0.0/0]\n', true], ['server:\n  trusted_proxies: [10.0.0.0/08]\n', true],
      ['server:\n  forward_auth_peers: ["2001:db8::/128"]\n', true], ['server:\n  forward_auth_peers: ["2001:db8::/129"]\n', false],
      ['server:\n  forward_auth_peers: ["::ffff:10.0.0.1/120"]\n', true], ['server:\n  trusted_proxies: ["10.0.0.0/"]\n', false],
      ['server:\n  request_timeout: 0s\n', false], ['server:\n  request_timeout: 000ms\n', false], ['server:\n  request_timeout: 1ms\n', true],
      ['upstreams:\n  - { name: api, url: "http://127.0.0.1:9", health_check: { path: /h, interval: 0s } }\n', false],
      [issuer('999ms'), false], [issuer('0m'), false], [issuer('1000ms'), true], [issuer('1s'), true],
      ['audit:\n  sinks: [{ type: postgres, url: "postgres://h/db", write_timeout: 99ms }]\n', false],
      ['audit:\n  sinks: [{ type: postgres, url: "postgres://h/db", write_timeout: 100ms }]\n', true],
      ['audit:\n  sinks: [{ type: postgres, url: "postgres://h/db", read_timeout: 999ms }]\n', false],
      ['audit:\n  sinks: [{ type: postgres, url: "postgres://h/db", read_timeout: 1s }]\n', true],
      ['audit:\n  retention: 0d\n', false], ['audit:\n  retention: 1s\n', true],
    ]
    for (const [yaml, accepted] of samples) {
      const text = yaml.startsWith('audit:') ? yaml : `${yaml}audit: { sinks: [] }\n`
      const loaded = loadConfigText(text, 'sample.yaml', {})
      expect(loaded.config !== undefined, `check ${accepted ? 'accepts' : 'refuses'} ${yaml}: ${loaded.diagnostics.map((d) => d.message).join('; ')}`).toBe(accepted)
      expect(errorsOf(text).length === 0, `the schema agrees with check on ${yaml}`).toBe(accepted)
    }
  })

  it('accepts ${env:NAME} wherever a typed value may stand, since the loader replaces it first', () => {
    expect(errorsOf('server:\n  max_body_bytes: ${env:MAX_BODY}\n  listen: ${env:LISTEN:-0.0.0.0:8080}\nlimits_store: { type: redis, url: "${env:REDIS_URL}" }\n')).toEqual([])
    expect(errorsOf('server:\n  max_body_bytes: lots\n')).not.toEqual([])
  })

  it('refuses algorithms the gateway never accepts, and a limit with neither rate nor quota', () => {
    expect(errorsOf('issuers:\n  - { name: i, issuer: https://i/, audiences: [a], algorithms: [HS256] }\n')).not.toEqual([])
    expect(errorsOf('issuers:\n  - { name: i, issuer: https://i/, audiences: [a], algorithms: [ES256] }\n')).toEqual([])
    expect(errorsOf('limits:\n  - { name: l, key: ip }\n')).not.toEqual([])
    expect(errorsOf('limits:\n  - { name: l, key: ip, quota: 100/d }\n')).toEqual([])
  })
})

describe('example configs and the schema', () => {
  it.each(exampleConfigs().map((file) => [file.slice(ROOT.length), file]))('%s points editors at the schema and conforms to it', (_name, file) => {
    const text = readFileSync(file, 'utf8')
    const line = SCHEMA_LINE.exec(text)
    expect(line, 'the first line is # yaml-language-server: $schema=…').not.toBeNull()
    expect(resolve(dirname(file), (line as RegExpExecArray)[1] as string)).toBe(SHIPPED)
    expect(schemaErrors(parse(text), schema)).toEqual([])
  })
})

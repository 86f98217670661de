// The README's list of the durations that are at most 24d (Node runs a longer timer at once) named
// half of them: `sign_in.session.ttl: 30d`, a session lasting a month as the list allowed, was a
// `bouncer check` error. Every duration the config refuses past 24d is named in that list.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'

interface SchemaNode {
  description?: string
  properties?: Record<string, SchemaNode>
  items?: SchemaNode
  anyOf?: SchemaNode[]
  oneOf?: SchemaNode[]
  const?: unknown
}

const ROOT = new URL('../../', import.meta.url)
const schema = JSON.parse(readFileSync(fileURLToPath(new URL('schema/bouncer.schema.json', ROOT)), 'utf8')) as SchemaNode

/** One step down to a duration: a key (`[]` for a list's entry), with the `type` its union member needs. */
type Step = { key: string; type?: unknown }

/** The smallest config that sets this duration to `value`, as JSON (JSON is YAML). */
function configSetting(path: Step[], value: unknown): string {
  let node: unknown = value
  for (let i = path.length - 1; i >= 0; i--) {
    const step = path[i] as Step
    const inner = step.type === undefined ? node : { ...(node as object), type: step.type }
    node = step.key === '[]' ? [inner] : { [step.key]: inner }
  }
  return JSON.stringify(node)
}

/** Every duration's path in the config's schema, as `server.request_timeout` or `upstreams[].timeout`. */
function durations(node: SchemaNode, path: Step[], out: Step[][]): Step[][] {
  if (node.description?.startsWith('a duration')) return [...out, path]
  for (const member of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) out = durations(member, path, out)
  const memberType = node.properties?.type?.const
  const withType = (steps: Step[]) => (memberType === undefined || steps.length === 0 ? steps : [...steps.slice(0, -1), { ...(steps.at(-1) as Step), type: memberType }])
  for (const [key, child] of Object.entries(node.properties ?? {})) out = durations(child, [...withType(path), { key }], out)
  if (node.items) out = durations(node.items, [...path, { key: '[]' }], out)
  return out
}

const spelled = (path: Step[]) => path.map((step) => step.key).join('.').replaceAll('.[]', '[]')

it('names every duration that bouncer check bounds at 24d', () => {
  const timers = durations(schema, [], [])
    .filter((path) => loadConfigText(configSetting(path, '25d'), '/nowhere/bouncer.yaml', {}).diagnostics.some((d) => d.message.startsWith('at most 24d')))
    .map(spelled)
  expect(timers).toContain('sign_in.session.ttl')
  const readme = readFileSync(fileURLToPath(new URL('README.md', ROOT)), 'utf8')
  const sentence = /The durations the gateway runs as timers are at most `24d`[^:]*:([^]*?)\n\n/.exec(readme)?.[1] ?? ''
  expect(timers.filter((path) => !sentence.includes(`\`${path}\``))).toEqual([])
})

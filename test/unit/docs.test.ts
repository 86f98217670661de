// The README and the guides keep their promises: every relative link (and #anchor) resolves, and
// every example config is introduced somewhere a reader will find it.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { DEPLOYED_NODE_OPTIONS, GATEWAY_V8_FLAGS } from '../../bench/cases.ts'
import { ADDED_FIELDS } from '../../src/audit/fields.ts'
import { configSchema, loadConfigText } from '../../src/config/index.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const markdownIn = (dir: string) => readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => `${dir}/${f}`)
// The examples' own READMEs too: a reader lands there from the README and follows their links.
const DOCS = ['README.md', 'bench/README.md', ...markdownIn('docs'), ...markdownIn('examples')]

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>()
  for (const match of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add((match[1] as string).toLowerCase().replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-'))
  }
  return out
}

/** What a snippet may lack because it is a part of a config: the rest of the file, its secrets, files and environment. */
const OUT_OF_CONTEXT = [
  /^unknown (issuer|upstream|policy|role|route|limit|datasource|function) "/,
  /^missing required key "/,
  /is used but no secrets store is configured/,
  /^environment variable \w+ is not set/,
  /^(cannot read .*: )?no such file/,
  /^accepting api_key credentials needs api_keys/,
  /signs people in to the console through sign_in/,
]

/** The ```yaml blocks that are config snippets (every top-level key a config key), with their first line. */
function configSnippets(markdown: string): { line: number; text: string }[] {
  const keys = new Set(Object.keys(configSchema.shape))
  return [...markdown.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].flatMap((match) => {
    const text = match[1] as string
    const top = [...text.matchAll(/^([a-z_]+):/gm)].map((key) => key[1] as string)
    if (top.length === 0 || !top.every((key) => keys.has(key))) return []
    return [{ line: markdown.slice(0, match.index).split('\n').length + 1, text }]
  })
}

function links(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '')
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string).filter((target) => !/^[a-z]+:/.test(target))
}

describe('documentation', () => {
  it.each(DOCS)('%s: every relative link and anchor resolves', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8')
    const broken: string[] = []
    for (const target of links(text)) {
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const file = path === '' ? join(ROOT, doc) : join(ROOT, dirname(doc), path)
      if (!existsSync(file)) broken.push(`${target}: no such file`)
      else if (anchor && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${target}: no such heading`)
    }
    expect(broken).toEqual([])
  })

  // A snippet is a part of a config, so it may name what the rest defines; but every key it spells
  // and every value it gives must be one the config takes (a walk of the guides found snippets that
  // only a whole file could check).
  it.each(DOCS)('%s: every config snippet spells keys and values the config takes', (doc) => {
    const problems = configSnippets(readFileSync(join(ROOT, doc), 'utf8')).flatMap((snippet) =>
      loadConfigText(snippet.text, join(ROOT, doc), {})
        .diagnostics.filter((d) => d.severity === 'error' && !OUT_OF_CONTEXT.some((pattern) => pattern.test(d.message)))
        .map((d) => `${doc}:${snippet.line + (d.line ?? 1) - 1}: ${d.path.join('.')}: ${d.message}`),
    )
    expect(problems).toEqual([])
  })

  // A probe rehashed records by the README and every one mismatched: it named six of the nine.
  it('names every field added after the first version where it says how to check a chain by hand', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const listed = /A field added after the first\s+version \(([^)]*)\)/.exec(readme)?.[1] ?? ''
    expect([...listed.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1])).toEqual(ADDED_FIELDS.map((field) => field.name))
    const count: Record<number, string> = { 6: 'six', 7: 'seven', 8: 'eight', 9: 'nine', 10: 'ten', 11: 'eleven', 12: 'twelve' }
    expect(readme).toContain(`drop those ${count[ADDED_FIELDS.length]} keys`)
  })

  // The quick start's list of guides left out two of them: a reader never found them from there.
  it('lists every guide in docs/ under the quick start', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const listed = /^Guides: ([\s\S]*?)\n\n/m.exec(readme)?.[1] ?? ''
    const guides = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))
    expect(guides.filter((guide) => !listed.includes(`(docs/${guide})`))).toEqual([])
  })

  it('introduces every example config in the README', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const examples = readdirSync(join(ROOT, 'examples'))
    expect(examples.length).toBeGreaterThan(5)
    expect(examples.filter((name) => !readme.includes(`examples/${name}`)).map((name) => relative(ROOT, join(ROOT, 'examples', name)))).toEqual([])
  })

  it('deploys with the Node options the benchmark measures', () => {
    for (const file of ['deploy/bouncer.service', 'Dockerfile']) {
      expect(readFileSync(join(ROOT, file), 'utf8'), file).toContain(`NODE_OPTIONS=${DEPLOYED_NODE_OPTIONS}`)
    }
  })

  it("runs the benchmark's floor (the minimal proxy) with the V8 flags bin/bouncer.js sets on the gateway", () => {
    const bin = readFileSync(join(ROOT, 'bin/bouncer.js'), 'utf8')
    const set = [...bin.matchAll(/^setFlagsFromString\('(--[^']+)'\)$/gm)].map((m) => m[1]).filter((flag) => flag !== '--max-semi-space-size=0')
    expect(set).toEqual(GATEWAY_V8_FLAGS)
  })
})

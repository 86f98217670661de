// Found by the audit probe (aud4): a sink is known by its name (sqlite:PATH, postgres:SCHEMA, stdout),
// which names its spill file, its metrics and its health. Two postgres sinks of one schema on two
// servers (a mirror) were taken without a word and shared one spill file: the sink that was up
// replayed and emptied the other's spilled records at the next start, so the other lost them and its
// chain had a gap verify named as deletion. Two stdout sinks wrote every record twice.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function sinkErrors(sinks: string): string[] {
  const loaded = loadConfigText(`audit:\n  sinks:\n${sinks}`, '/etc/bouncer/bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d))
}

it('refuses two postgres sinks of one schema, on one server or two', () => {
  expect(sinkErrors(`    - { type: postgres, url: 'postgres://a.example/audit', schema: mirror }
    - { type: postgres, url: 'postgres://b.example/audit', schema: mirror }
`)).toEqual([
    'bouncer.yaml:4:68: audit.sinks[1].schema: two postgres sinks use schema mirror: a sink is known by its schema (its spill file, metrics and health), so their spilled records would mix and be lost; give each its own schema',
  ])
  // The default schema counts too.
  expect(sinkErrors(`    - { type: postgres, url: 'postgres://a.example/audit' }
    - { type: postgres, url: 'postgres://b.example/audit' }
`)).toHaveLength(1)
})

it('refuses two stdout sinks, and two sqlite sinks of one file however spelled', () => {
  expect(sinkErrors(`    - { type: stdout }
    - { type: stdout }
`)).toEqual(['bouncer.yaml:4:15: audit.sinks[1].type: two stdout sinks: each record would be written twice'])
  expect(sinkErrors(`    - { type: sqlite, path: ./data/audit.db }
    - { type: sqlite, path: data/audit.db }
`)).toEqual(['bouncer.yaml:4:29: audit.sinks[1].path: two sqlite sinks write /etc/bouncer/data/audit.db'])
})

it('takes sinks of different schemas, and a postgres sink beside a sqlite one', () => {
  expect(sinkErrors(`    - { type: postgres, url: 'postgres://a.example/audit', schema: primary }
    - { type: postgres, url: 'postgres://b.example/audit', schema: mirror }
    - { type: sqlite, path: ./data/audit.db }
    - { type: stdout }
`)).toEqual([])
})

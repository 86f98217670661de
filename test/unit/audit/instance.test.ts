// Which gateway wrote a record: the configured id, else $BOUNCER_INSTANCE, else host and process.
import { hostname } from 'node:os'
import { describe, expect, it } from 'vitest'
import { instanceIdOf } from '../../../src/audit/log.ts'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const config = (instanceId: string) => loadConfigText(`audit:\n  instance_id: ${JSON.stringify(instanceId)}\n`, 'bouncer.yaml', {})

describe('the instance that writes the records', () => {
  it('is audit.instance_id, else $BOUNCER_INSTANCE, else host:pid', () => {
    expect(instanceIdOf('eu-west-1a', { BOUNCER_INSTANCE: 'from-env' })).toBe('eu-west-1a')
    expect(instanceIdOf(undefined, { BOUNCER_INSTANCE: 'from-env' })).toBe('from-env')
    expect(instanceIdOf(undefined, { BOUNCER_INSTANCE: '' })).toBe(`${hostname()}:${process.pid}`)
    expect(instanceIdOf(undefined, {})).toBe(`${hostname()}:${process.pid}`)
  })

  it('takes a name from the config, and refuses one that is not a name', () => {
    expect(config('gw-1.eu:a').config?.audit.instance_id).toBe('gw-1.eu:a')
    const bad = config('gw 1\u001b[2J')
    expect(bad.config).toBeUndefined()
    expect(bad.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)).join('\n')).toContain('an instance id is letters, digits and . _ : -')
  })
})

// Every failure of a target's name lookup is a connect failure (upstream/errors.ts): nothing was
// sent. EAI_FAIL (a name server that refuses, which no test here can be without the machine's DNS)
// and EINVAL (a name libuv refuses) were "failed mid-exchange", no failure of the target's.
import { expect, it } from 'vitest'
import { failureOf, isConnectFailureCode, translateUndiciError } from '../../../src/upstream/errors.ts'

/** What node:dns's lookup gives net.connect when getaddrinfo fails. */
const lookupError = (code: string) => Object.assign(new Error(`getaddrinfo ${code} api.internal`), { code, syscall: 'getaddrinfo', hostname: 'api.internal' })

it('a name lookup that fails, however, is a connect failure whose detail says the name did not resolve', () => {
  for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EINVAL', 'EAI_NODATA']) {
    const err = lookupError(code)
    expect(failureOf(err)).toBe('connect_failure')
    const problem = translateUndiciError(err, { name: 'api' })
    expect({ code: problem.code, detail: problem.detail }).toEqual({ code: 'upstream_unavailable', detail: `Upstream "api" is unavailable: its host name could not be resolved (${code}).` })
  }
  // An MCP server's client reads the codes alone (fetch's cause): every EAI_ code is one.
  expect(isConnectFailureCode('EAI_FAIL')).toBe(true)
  // EINVAL from anything but the lookup is no connect failure.
  expect(failureOf(Object.assign(new Error('write EINVAL'), { code: 'EINVAL', syscall: 'write' }))).toBeNull()
})

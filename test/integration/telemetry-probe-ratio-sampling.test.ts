// OTEL_TRACES_SAMPLER=traceidratio, which the README gives as the way to keep a share of the traces
// "whatever callers send": the SDK's sampler decides on the trace id alone (its four 32-bit words
// XORed, compared with the ratio), and a caller continuing its own trace chooses that id. Four equal
// words XOR to 0 — kept at any ratio; a first word ffffffff and three zero ones — never kept. A
// client could put all its requests in the traces, or take them all out. The gateway now gives the
// sampler the trace id keyed with a secret of its own.
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let receiver: OtlpReceiver
let upstream: TestUpstream
let gateway: TestGateway
const REQUESTS = 200

beforeAll(async () => {
  receiver = await startOtlpReceiver()
  upstream = await startUpstream()
  // The SDK reads its sampler's settings from the environment when the gateway starts tracing.
  const before = { sampler: process.env.OTEL_TRACES_SAMPLER, arg: process.env.OTEL_TRACES_SAMPLER_ARG }
  process.env.OTEL_TRACES_SAMPLER = 'traceidratio'
  process.env.OTEL_TRACES_SAMPLER_ARG = '0.1'
  try {
    gateway = await startTestGateway({
      telemetry: { otlp_endpoint: receiver.url, service_name: 'bouncer-ratio' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'api', public: true }],
    })
  } finally {
    if (before.sampler === undefined) delete process.env.OTEL_TRACES_SAMPLER
    else process.env.OTEL_TRACES_SAMPLER = before.sampler
    if (before.arg === undefined) delete process.env.OTEL_TRACES_SAMPLER_ARG
    else process.env.OTEL_TRACES_SAMPLER_ARG = before.arg
  }
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  receiver?.close()
})

/** A 32-bit word in hex, never 0 (an all-zero trace id is invalid). */
const word = (): string => {
  const hex = randomBytes(4).toString('hex')
  return hex === '00000000' ? '00000001' : hex
}

/** How many of the requests continuing these trace ids the gateway sampled (the flag the upstream was sent). */
async function sampled(traceIds: string[]): Promise<number> {
  let kept = 0
  for (let i = 0; i < traceIds.length; i += 50) {
    const answers = await Promise.all(traceIds.slice(i, i + 50).map(async (traceId) => {
      const res = await request(`${gateway.url}/data/x`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
      const received = (await res.body.json()) as Received
      const sent = received.headers.traceparent as string
      expect(sent.split('-')[1]).toBe(traceId) // the caller's trace, continued
      return sent.endsWith('-01')
    }))
    kept += answers.filter(Boolean).length
  }
  return kept
}

describe('traceidratio at 0.1: a caller\'s chosen trace ids', () => {
  it('cannot put all its requests in the traces', async () => {
    // Four equal words: the SDK's sampler read 0, under any ratio.
    const ids = Array.from({ length: REQUESTS }, () => word().repeat(4))
    const kept = await sampled(ids)
    expect(kept).toBeLessThan(REQUESTS / 2) // about 20; before, 200
  })

  it('cannot take all its requests out of the traces', async () => {
    // ffffffff then words that cancel out: the SDK's sampler read ffffffff, over any ratio but 1.
    const ids = Array.from({ length: REQUESTS }, () => {
      const w = word()
      return `ffffffff${w}${w}00000000`
    })
    const kept = await sampled(ids)
    expect(kept).toBeGreaterThan(0) // about 20; before, 0 (at 10 %, 0 of 200 by chance: 7e-10)
    // Those sampled are the ones exported: a request's spans are kept or dropped together.
    const keptIds = new Set(upstream.received.slice(-REQUESTS).filter((r) => (r.headers.traceparent as string).endsWith('-01')).map((r) => (r.headers.traceparent as string).split('-')[1]))
    const ours = () => receiver.spans.filter((span) => span.traceId.startsWith('ffffffff'))
    await waitFor(() => ours().length >= keptIds.size * 2, 'the sampled requests\' spans')
    const exported = ours()
    expect(new Set(exported.map((span) => span.traceId))).toEqual(keptIds)
    expect(exported.length).toBe(keptIds.size * 2) // the server span and the upstream span of each
  })
})

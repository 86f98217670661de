// /metrics of several workers merged into the gateway's: sums, the process's series once, the
// lowest `_up`, and a stopped worker's counters kept so totals never go back.
import { describe, expect, it } from 'vitest'
import { carry, mergeMetrics, parseMetrics, type Families } from '../../../src/instance/workers/metrics-merge.ts'

const worker = (requests: number, inFlight: number, rss: number, up: number, lag: number) => parseMetrics(`# HELP bouncer_process_resident_memory_bytes Resident memory size in bytes.
# TYPE bouncer_process_resident_memory_bytes gauge
bouncer_process_resident_memory_bytes ${rss}

# HELP bouncer_nodejs_eventloop_lag_p99_seconds The 99th percentile of the recorded event loop delays.
# TYPE bouncer_nodejs_eventloop_lag_p99_seconds gauge
bouncer_nodejs_eventloop_lag_p99_seconds ${lag}
# HELP bouncer_requests_in_flight Requests being handled now.
# TYPE bouncer_requests_in_flight gauge
bouncer_requests_in_flight ${inFlight}
# HELP bouncer_audit_sink_up 1 when an audit sink takes records.
# TYPE bouncer_audit_sink_up gauge
bouncer_audit_sink_up{sink="sqlite:/a.db"} ${up}
# HELP bouncer_requests_total Requests by route, status and decision.
# TYPE bouncer_requests_total counter
bouncer_requests_total{route="r",status="200",decision="allow"} ${requests}
# HELP bouncer_request_duration_seconds Whole request.
# TYPE bouncer_request_duration_seconds histogram
bouncer_request_duration_seconds_bucket{route="r",le="0.01"} ${requests}
bouncer_request_duration_seconds_bucket{route="r",le="+Inf"} ${requests}
bouncer_request_duration_seconds_sum{route="r"} ${requests / 1000}
bouncer_request_duration_seconds_count{route="r"} ${requests}
`)

function series(text: string): Record<string, number> {
  return Object.fromEntries(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]))
}

describe('merging the workers\' metrics', () => {
  it('sums requests, keeps the process\'s series once, the lowest _up and the highest lag', () => {
    const text = mergeMetrics([worker(10, 1, 300, 1, 0.002), worker(5, 2, 300, 0, 0.009)])
    expect(series(text)).toEqual({
      bouncer_process_resident_memory_bytes: 300,
      bouncer_nodejs_eventloop_lag_p99_seconds: 0.009,
      bouncer_requests_in_flight: 3,
      'bouncer_audit_sink_up{sink="sqlite:/a.db"}': 0,
      'bouncer_requests_total{route="r",status="200",decision="allow"}': 15,
      'bouncer_request_duration_seconds_bucket{route="r",le="0.01"}': 15,
      'bouncer_request_duration_seconds_bucket{route="r",le="+Inf"}': 15,
      'bouncer_request_duration_seconds_sum{route="r"}': 0.015,
      'bouncer_request_duration_seconds_count{route="r"}': 15,
    })
    expect(text).toContain('# HELP bouncer_requests_total Requests by route, status and decision.\n# TYPE bouncer_requests_total counter\n')
    expect(text.match(/# TYPE bouncer_requests_total /g)).toHaveLength(1)
  })

  it('keeps what a stopped worker counted, so the totals do not go back', () => {
    const carried: Families = new Map()
    carry(carried, worker(5, 2, 300, 1, 0.009))
    // Its replacement counts from 0; gauges of the stopped worker are gone with it.
    const text = series(mergeMetrics([worker(10, 1, 300, 1, 0.002), worker(1, 0, 300, 1, 0.001)], carried))
    expect(text['bouncer_requests_total{route="r",status="200",decision="allow"}']).toBe(16)
    expect(text['bouncer_request_duration_seconds_count{route="r"}']).toBe(16)
    expect(text.bouncer_requests_in_flight).toBe(1)
  })
})

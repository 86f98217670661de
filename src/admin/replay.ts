// Replay (issue 20): the recorded requests of the last hours decided again under a draft config,
// listing every decision that would change — the safe way to ship a policy change.
//
// A record keeps the verified identity's issuer, subject and client, not every claim of its token,
// so each request is decided twice from the same reconstructed identity, once under the running
// config and once under the draft, with the gateway's own decision code (explain). A difference is
// then the draft's doing alone; a rule or condition on a claim the record does not keep decides
// the same way both times, so a change that hinges only on such a claim is not seen (the answer says
// so). Limits and upstream failures are not replayed: only route, identity, roles and policy.
import { readRecords, type AuditRecord, type AuditSource } from '../audit/index.ts'
import { formatDiagnostic, loadConfigText } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { compileRuntime, createRuntimeDeps, explain, loadModulesFor, type Runtime, type Verdict } from '../gateway/index.ts'
import { createLogger } from '../telemetry/index.ts'
import type { ReplayChange, ReplayResult } from './console-shapes.ts'

/** At most this many records are read; the answer says when the range held more. */
export const REPLAY_MAX_RECORDS = 100_000

/** The claims a recorded request's verified identity stands for (the record keeps iss, sub and the client). */
export function recordedClaims(record: Pick<AuditRecord, 'issuer' | 'subject' | 'client_id'>): Record<string, unknown> | undefined {
  if (record.subject === null) return undefined
  const claims: Record<string, unknown> = { sub: record.subject }
  if (record.issuer !== null) claims.iss = record.issuer
  if (record.client_id !== null) Object.assign(claims, { client_id: record.client_id, azp: record.client_id })
  return claims
}

function verdict(rt: Runtime, record: AuditRecord): Verdict {
  const { decision } = explain(rt, { method: record.method, path: record.path, claims: recordedClaims(record), ip: record.source_ip })
  return { effect: decision.effect, status: decision.status, code: decision.code, statement: decision.statement, reason: decision.reason }
}

/** Refused before any decision (a bad request, a token that did not verify): the draft cannot change those. */
const undecidable = (r: AuditRecord) => r.method === '-' || (r.status === 401 && r.subject === null) || r.status === 400 || r.status === 413 || r.status === 431

/**
 * The draft's `${env:…}` are this process's environment, the master key and env-store secrets
 * included; what the draft put where an answer quotes it (an invalid listen address, a route id)
 * came back in the clear to any admin (found by an adversarial probe). Every value the draft
 * referenced is written back as its reference in the answer, and in an error's message.
 */
export async function replay(current: Runtime, source: AuditSource, options: { draft: string; sinceMs: number }): Promise<ReplayResult> {
  const hide = envValuesHider(options.draft, process.env)
  try {
    return JSON.parse(hide(JSON.stringify(await replayDraft(current, source, options)))) as ReplayResult
  } catch (err) {
    if (err instanceof GatewayError) throw new GatewayError(err.code, { detail: hide(err.detail) })
    // No cause: its message is the one that quotes the values, and a cause reaches the log.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(hide(err instanceof Error ? err.message : String(err)))
  }
}

const ENV_REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)/g

/** Replaces in a JSON text what the draft's env references resolve to (4 characters or more, not a bare number) with the reference. */
export function envValuesHider(draft: string, env: NodeJS.ProcessEnv): (json: string) => string {
  const values: Array<[string, string]> = []
  for (const [, name] of draft.matchAll(ENV_REFERENCE)) {
    const value = env[name as string]
    if (value !== undefined && value.length >= 4 && !/^\d+$/.test(value)) values.push([JSON.stringify(value).slice(1, -1), `\${env:${name as string}}`])
  }
  values.sort((a, b) => b[0].length - a[0].length) // a value inside another is replaced after it
  return (json) => values.reduce((text, [value, reference]) => text.replaceAll(value, reference), json)
}

async function replayDraft(current: Runtime, source: AuditSource, options: { draft: string; sinceMs: number }): Promise<ReplayResult> {
  const loaded = loadConfigText(options.draft, 'draft.yaml')
  if (!loaded.config) {
    return { ok: false, errors: loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('draft.yaml', d)) }
  }
  const deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
  try {
    await loadModulesFor(loaded.config)
    const draft = compileRuntime(loaded.config, deps)
    const records = await readRecords(source, { sinceMs: options.sinceMs, limit: REPLAY_MAX_RECORDS + 1 })
    const truncated = records.length > REPLAY_MAX_RECORDS
    const scanned = Math.min(records.length, REPLAY_MAX_RECORDS)
    // Requests alike in everything the decision reads are decided once.
    const groups = new Map<string, { record: AuditRecord; count: number }>()
    for (const record of records.slice(0, scanned)) {
      if (undecidable(record)) continue
      const key = JSON.stringify([record.method, record.path, record.issuer, record.subject, record.client_id, record.source_ip])
      const group = groups.get(key)
      if (group) group.count++
      else groups.set(key, { record, count: 1 }) // newest first: the first seen is the newest
    }
    const changes: ReplayChange[] = []
    for (const { record, count } of groups.values()) {
      const before = verdict(current, record)
      const after = verdict(draft, record)
      if (before.effect === after.effect && before.code === after.code && before.statement === after.statement) continue
      changes.push({
        method: record.method, path: record.path, principal: record.subject, issuer: record.issuer, source_ip: record.source_ip, requests: count,
        last: { id: record.id, time: record.time, status: record.status, decision: record.decision }, before, after,
      })
    }
    changes.sort((a, b) => Number(b.after.effect === 'deny') - Number(a.after.effect === 'deny') || b.requests - a.requests)
    return {
      ok: true, scanned, distinct: groups.size, truncated, changes,
      note: 'Each request is decided from its recorded identity (issuer, subject, client) under the running config and under the draft; rate limits and upstreams are not replayed.',
    }
  } finally {
    await deps.closeAll()
  }
}

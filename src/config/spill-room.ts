// How much disk the audit spill files may take. audit.spill_max_bytes is the gateway's: each
// server.workers worker gets an equal share (instance/workers/role.ts), and under on_spill_full:
// refuse each share has room past it for the records already on their way when the refusals begin
// (audit/spill-budget.ts). `bouncer check` compares this, not the cap alone, with spill_dir's file
// system: a file system the cap fitted filled with the headroom (a probe).
import type { AuditConfig } from './schema.ts'

/**
 * Past the cap under `refuse`: room for the records already on their way when the request thread
 * hears of it (the batches queued for a worker that runs behind, at a lower priority under load:
 * a test saw 36 answered requests' records dropped with a tenth of a 1 MiB cap) and the refusals.
 */
export function refuseHeadroom(maxBytes: number): number {
  return Math.max(Math.floor(maxBytes / 10), 8 * 1_048_576)
}

/** What one audit log's spill files may hold past its `spill_max_bytes` (refuse: the headroom; drop: none). */
export function spillHeadroom(audit: Pick<AuditConfig, 'spill_max_bytes' | 'on_spill_full'>): number {
  return audit.on_spill_full === 'refuse' ? refuseHeadroom(audit.spill_max_bytes) : 0
}

/** One worker's share of spill_max_bytes, of `workers`. */
export function spillShare(maxBytes: number, workers: number): number {
  return Math.floor(maxBytes / workers)
}

/** The most the spill files of a gateway with `workers` request-path workers hold on disk. */
export function spillDiskBytes(audit: Pick<AuditConfig, 'spill_max_bytes' | 'on_spill_full'>, workers: number): number {
  const share = spillShare(audit.spill_max_bytes, workers)
  return workers * (share + spillHeadroom({ spill_max_bytes: share, on_spill_full: audit.on_spill_full }))
}

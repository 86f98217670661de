// The audit chain's state and its verification, as the server builds them (log.ts, checkpoint.ts,
// verify.ts) and answers them (GET /api/audit/head, POST /api/audit/verify, `bouncer audit verify
// --json`) and the console reads them (console/src/pages/audit.tsx): one description, with no
// imports, so the browser's build can take its types too.

export interface Checkpoint {
  chain: string
  /** Records in the chain up to its head: the head record's seq (retention does not lower it). */
  count: number
  id: string
  hash: string
  /** When it was signed (RFC 3339, ms). */
  time: string
  /** The signing key's RFC 7638 thumbprint. */
  kid: string
  /** Ed25519 over the canonical JSON of the fields above (sorted keys), base64url. */
  sig: string
}

/**
 * Where retention left a chain, signed by the gateway that cut it (checkpoint.ts): without the
 * signature, anyone who can write the log could delete a chain's oldest records and write this row
 * by hand, and the chain would verify from there.
 */
export interface RetentionCut {
  chain: string
  /** The last record deleted: the chain goes on from its seq and hash. */
  seq: number
  hash: string
  /** The time of the newest record the cut deleted (verify holds it against `retention`). */
  newest: string
  /**
   * The `audit.retention` (ms) the cutting gateway ran with: verify holds `newest` against it, not
   * against its own config's, which a longer retention set since would make every earlier cut
   * look early. Absent from a cut signed before it was signed (verify then uses its config's).
   */
  retention?: number
  /** When the cut was made. */
  time: string
  kid: string
  /** Ed25519 over the canonical JSON of the fields above and `cut: "retention"`, base64url. */
  sig: string
}

/**
 * A retention cut verify does not vouch for: 'unsigned' (a gateway before signed cuts left it, or it
 * was written by hand), 'unknown key', 'bad signature', or 'early' (signed, but it deleted records
 * younger than the retention it was signed under).
 */
export interface CutFinding {
  chain: string
  seq: number
  problem: 'unsigned' | 'unknown key' | 'bad signature' | 'early'
  /** The cut as signed (null when unsigned). */
  cut: RetentionCut | null
}

/** What GET /api/audit/head publishes, so a verifier elsewhere can pin the key. */
export interface PublicCheckpointKey {
  kid: string
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
}

/** GET /api/audit/head: where the chain is now, its latest signed checkpoint, and the key to check it. */
export interface AuditHead {
  chain: string
  /** The newest record in every sink (or durably spilled). */
  head: { count: number; id: string | null; hash: string }
  checkpoint: Checkpoint | null
  checkpoint_file: string
  key: PublicCheckpointKey
  /** With `server.workers`: each worker's own chain (its `instance`), the first's being the one above. */
  workers?: Array<{ worker: string; chain: string; head: AuditHead['head']; checkpoint: Checkpoint | null }>
  /** With `server.workers`: the workers that gave no head within 5 s (busy, stuck, an error) or are not running (restarting after a crash), and why. */
  workers_unanswered?: Array<{ worker: string; why: string }>
}

/** A record that does not match: the first of its chain. */
export interface RecordProblem {
  chain: string
  seq: number
  id: string
  time: string
  reason: string
}

/** A chain that began because an earlier one could not be continued. */
export interface ChainRestart {
  chain: string
  id: string
  time: string
  detail: string | null
}

/** A checkpoint and where it was found. */
export interface FoundCheckpoint {
  checkpoint: Checkpoint
  source: string
}

/** A chain that ends before its latest checkpoint: its newest records were deleted. */
export interface Truncation extends FoundCheckpoint {
  chain: string
  /** The last record the log has (0: none). */
  end: number
  missing: number
}

export interface VerifyResult {
  ok: boolean
  /** Records whose hash and link were checked (up to the first problem of each chain). */
  checked: number
  chains: number
  problems: RecordProblem[]
  restarts: ChainRestart[]
  /** Records that say records were lost before they were numbered (code records_lost: the spill full, every sink away). */
  losses: ChainRestart[]
  truncations: Truncation[]
  /** The record at a checkpoint's count is not the one it signed: the chain was rewritten. */
  rewritten: Array<FoundCheckpoint & { chain: string; id: string }>
  /** Checkpoints whose signature does not verify with the key they name. */
  forged: FoundCheckpoint[]
  /** Chains that reach their latest signed checkpoint. */
  anchored: number
  /** Chains with records but no checkpoint signed by a known key: their newest records are not anchored. */
  unanchored: Array<{ chain: string; newest: string | null }>
  /** Checkpoints signed by keys the config does not hold (not checked). */
  unknownKeys: number
  /** Checkpoints could not be checked at all: there is no key (as `unknownKeys`, a note; `verify --strict` fails). */
  uncheckable: string | null
  /** Lines of the checkpoint file that are not checkpoints. */
  damagedCheckpointLines: number
  /** Retention cuts not vouched for: 'bad signature' and 'early' fail verify, the others fail `--strict`. */
  cuts: CutFinding[]
  /** Chains retention left no record of: where their cut is (a note, so a whole chain's deletion does not read as an empty log). */
  emptied?: Array<{ chain: string; seq: number; cut: RetentionCut | null }>
}

// In text/, the bottom layer: config (the duplicate-sink check) and the audit worker both name sinks, and
// the worker imports nothing of config (its schemas: ~190 ms of CPU at every audit worker start).
/** A sink as its name needs it (the worker's sink config: a SQLite path already resolved). */
export type NamedSink = { type: 'sqlite'; path: string } | { type: 'postgres'; schema: string } | { type: 'stdout' }

/**
 * A sink's name, in logs and metrics and in its spill file's name: the sinks', the spill adoption's
 * and the config's one definition (validate.ts refuses two sinks of one name: they would share a spill file).
 */
export function sinkName(sink: NamedSink): string {
  return sink.type === 'sqlite' ? `sqlite:${sink.path}` : sink.type === 'postgres' ? `postgres:${sink.schema}` : 'stdout'
}

export { printable } from './printable.ts'
export { sinkName, type NamedSink } from './audit-sink-name.ts'

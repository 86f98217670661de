import { signal } from '@preact/signals'

/** A request handed to the simulator (from a denial's "simulate"). */
export interface Simulation {
  method: string
  path: string
  ip?: string
  claims?: Record<string, unknown>
  /** The claims are a client certificate's (iss its CA's DN): explain cannot tell from the claims alone. */
  credential?: 'client_cert'
  /** A recorded MCP tool call: explained as tools/call decides it (method and path are then not sent). */
  tool?: string
  /** Why there are no claims: the recorded request had no verified identity. */
  note?: string
}
export const prefill = signal<Simulation | null>(null)

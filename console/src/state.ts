import { signal } from '@preact/signals'

/** A request handed to the simulator (from a denial's "simulate"). */
export interface Simulation { method: string; path: string; ip?: string; claims?: Record<string, unknown> }
export const prefill = signal<Simulation | null>(null)

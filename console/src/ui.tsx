// Small pieces every page uses.
import type { ComponentChildren } from 'preact'

export function Panel({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="panel">
      <h2>
        {title}
        {actions && <span class="actions">{actions}</span>}
      </h2>
      {children}
    </section>
  )
}

export function Failure({ error }: { error: unknown }) {
  if (!error) return null
  return <p class="error" role="alert">{(error as Error).message ?? String(error)}</p>
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>
}

export const OUTCOME_COLORS: Record<string, string> = { allow: '#2e8b57' }
const DENY = ['#e07b39', '#d9534f', '#f0ad4e', '#c0392b', '#e67e22', '#b9770e', '#a93226', '#f5b041']
const ERROR = ['#7d3c98', '#5b2c6f', '#a569bd', '#4a235a']
export function outcomeColor(key: string, index: number): string {
  if (key === 'allow') return OUTCOME_COLORS.allow as string
  const palette = key.startsWith('deny:') ? DENY : ERROR
  return palette[index % palette.length] as string
}

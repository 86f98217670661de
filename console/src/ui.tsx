// Small pieces every page uses.
import type { ComponentChildren } from 'preact'

export function Panel({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="panel">
      {/* The buttons beside the heading, not in it: a screen reader's list of headings reads "Search", not "Search Export CSV Export NDJSON". */}
      <div class="panel-head">
        <h2>{title}</h2>
        {actions && <span class="actions">{actions}</span>}
      </div>
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

export { outcomeColor } from './colors'

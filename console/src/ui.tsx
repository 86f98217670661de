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

export { outcomeColor } from './colors'

import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, ended, forget, learnSignInPaths, prefetch, refusal, refusedSignOut, session, signIn, signInPath, signOut } from './api'
import { here } from './router'
import { AuditPage } from './pages/audit'
import { CatalogPage } from './pages/catalog'
import { DenialsPage } from './pages/denials'
import { OverviewPage } from './pages/overview'
import { RequestsPage } from './pages/requests'
import { SimulatorPage } from './pages/simulator'
import type { ConsoleCaller, ConsoleSession, ReloadResult } from '../../src/admin/console-shapes.ts'
import './style.css'

const PAGES: Record<string, { title: string; view: () => preact.JSX.Element }> = {
  overview: { title: 'Overview', view: OverviewPage },
  requests: { title: 'Requests', view: RequestsPage },
  denials: { title: 'Denials', view: DenialsPage },
  simulator: { title: 'Simulator', view: SimulatorPage },
  audit: { title: 'Audit', view: AuditPage },
  catalog: { title: 'Catalog', view: CatalogPage },
}

function SignIn() {
  const [value, setValue] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await signIn(value.trim())
    } catch (err) {
      // A wrong token in the console's words; any other refusal (the admin API disabled) in the gateway's.
      setError(err instanceof ApiError && err.status === 401 && err.invalidToken ? 'That token is not valid for this gateway.' : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const sso = signInPath.value
  return (
    <main class="signin">
      <h1>Bouncer</h1>
      {ended.value && !refusal.value && (
        <p class="error" role="alert" data-testid="session-ended">
          {ended.value === 'session' ? 'Your session ended: sign in again.' : 'The admin token is no longer accepted (changed or removed by a reload): sign in with the current one.'}
        </p>
      )}
      {refusal.value && <p class="error" role="alert" data-testid="refusal">{refusal.value}</p>}
      {refusal.value && refusedSignOut.value ? (
        // Signed in, but refused: the cookie stays until signed out, so signing out comes first.
        <p class="sso">
          <button type="button" class="button" onClick={signOut} data-testid="sign-out">Sign out, to sign in with another account</button>
        </p>
      ) : sso && (
        <p class="sso">
          {/* Back to the page asked for, its filters included (the fragment is the console's route). */}
          <a class="button" href={`${sso}?return_to=${encodeURIComponent(`/${here.value.page === 'overview' && here.value.params.size === 0 ? '' : location.hash}`)}`} data-testid="sso">Sign in with your company account</a>
        </p>
      )}
      {sso && <p class="hint">or with a token:</p>}
      <form onSubmit={submit}>
        <label>
          Admin token
          <input name="token" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} autofocus />
        </label>
        <button type="submit" disabled={busy || value.trim() === ''}>Sign in</button>
        {error && <p class="error" role="alert">{error}</p>}
        <p class="hint">admin.token may do everything; admin.read_token reads and simulates but changes nothing. The token stays in this tab only.</p>
      </form>
    </main>
  )
}

function ReloadButton() {
  const [state, setState] = useState<string | null>(null)
  const reload = async () => {
    setState('reloading…')
    try {
      const result = await api<ReloadResult>('reload', { method: 'POST', accept: [422] })
      setState(result.ok ? `reloaded (generation ${result.generation})` : `refused: ${result.errors.join('; ')}`)
    } catch (err) {
      setState((err as Error).message)
    }
  }
  return (
    <span class="reload">
      <button type="button" onClick={reload} data-testid="reload">Reload config</button>
      {/* In the page before its text: a status region inserted with its text is often not read out. */}
      <small role="status">{state}</small>
    </span>
  )
}

function skipToContent(event: MouseEvent): void {
  event.preventDefault()
  document.getElementById('content')?.focus()
}

function Shell({ me }: { me: ConsoleCaller }) {
  const page = PAGES[here.value.page] ?? PAGES.overview
  const View = page.view
  // The tab's title and the page's one h1 name the page: the history, the tab strip and a screen reader's headings say which.
  useEffect(() => void (document.title = `${page.title} · Bouncer console`), [page])
  return (
    <>
      {/* The first stop of Tab: past the header's links and buttons to the page. Not href="#…": the hash is the console's route. */}
      <a class="skip" href={`#/${here.value.page}`} onClick={skipToContent}>Skip to content</a>
      <header>
        <strong class="brand">Bouncer</strong>
        <nav>
          {Object.entries(PAGES).map(([key, p]) => (
            <a href={`#/${key}`} class={p === page ? 'active' : ''} aria-current={p === page ? 'page' : undefined}>{p.title}</a>
          ))}
        </nav>
        <span class="who">
          {me.principal && <span class="principal" data-testid="principal" title={me.role ? `as ${me.role}` : undefined}>{me.principal}</span>}
          <span class={`badge ${me.access}`} data-testid="access">{me.access === 'admin' ? 'admin' : 'read-only'}</span>
          {me.may.reload && <ReloadButton />}
          <button type="button" class="link" onClick={signOut}>Sign out</button>
        </span>
      </header>
      <main id="content" tabIndex={-1}>
        <h1 class="sr-only">{page.title}</h1>
        {/* Keyed by page only: a page reads its filters from the URL, so back/forward updates it in place. */}
        <View key={here.value.page} />
      </main>
    </>
  )
}

function App() {
  // With a token from this tab, or a session cookie the page cannot see (HttpOnly): ask either way.
  const [checking, setChecking] = useState(session.value === null)
  useEffect(() => {
    if (session.value !== null) return
    performance.mark('bouncer:session-asked')
    api<ConsoleSession>('session')
      .then((me) => {
        performance.mark('bouncer:session')
        if (me.access === null) signInPath.value = me.sign_in
        else session.value = me
      })
      .catch(async (err: unknown) => {
        forget()
        if (err instanceof ApiError && err.status === 403) {
          refusal.value = err.message
          await learnSignInPaths()
        }
      })
      .finally(() => setChecking(false))
  }, [])
  if (checking) return <p class="loading">Loading…</p>
  const me = session.value
  return me ? <Shell me={me} /> : <SignIn />
}

// A returning tab opens on the overview: its data is asked for beside the session, not after it.
if (here.value.page === 'overview' && here.value.params.size === 0) prefetch('overview?since=1h')
render(<App />, document.getElementById('app') as HTMLElement)

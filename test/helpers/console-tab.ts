// One signed-in console tab for a whole test file, instead of a browser context, a page and a
// sign-in for each test: each of those costs chromium about 2-3 s of CPU (a new renderer, the
// console's first load, the sign-in), more than most of the tests' own steps. Each test still starts
// on a document of its own: `take` leaves the previous test's document for about:blank, so the
// test's first showPage loads the console afresh (no page state, focus, history position or timer of
// the previous test survives), signed in by the token the tab keeps in its sessionStorage, as a
// person's tab reopened on the console is. What a test listens to on the page (its errors) is
// attached for that test only, and detached before its document is left.
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { openPage, signInWithToken, type PageOptions } from './browser.ts'

/** Listeners a test attaches to the page for its own steps (page.on(event, handler)). */
export type Watch = Array<[event: string, handler: (...args: never[]) => void]>

export interface ConsoleTab {
  context: BrowserContext
  page: Page
  /**
   * Starts a test on the tab: `watch` attached, the tab on a blank document, or, with `signIn`, on
   * the console of `adminUrl` freshly loaded and signed in with `token` (for a file whose tests each
   * have a gateway: a tab's sign-in is per origin). `release`, in the test's finally: detaches
   * `watch`, drops the test's request routes and other pages, signs out what `signIn` signed in,
   * and leaves the test's document.
   */
  take(watch?: Watch, signIn?: { adminUrl: string; token: string }): Promise<{ page: Page; release(): Promise<void> }>
  close(): Promise<void>
}

/** A context and its one page, signed in to `adminUrl` with `token` (when given) once. */
export async function openConsoleTab(browser: Browser, options: PageOptions, signIn?: { adminUrl: string; token: string }): Promise<ConsoleTab> {
  const { context, page } = await openPage(browser, options)
  if (signIn) await signInWithToken(page, signIn.adminUrl, signIn.token)
  await page.goto('about:blank')
  const on = page.on.bind(page) as (event: string, handler: (...args: never[]) => void) => Page
  const off = page.off.bind(page) as (event: string, handler: (...args: never[]) => void) => Page
  return {
    context,
    page,
    async take(watch = [], signInHere) {
      for (const [event, handler] of watch) on(event, handler)
      // From about:blank: the sign-in is the test's own fresh load of the console.
      if (signInHere) await signInWithToken(page, signInHere.adminUrl, signInHere.token)
      return {
        page,
        async release() {
          for (const [event, handler] of watch) off(event, handler)
          await page.unrouteAll({ behavior: 'ignoreErrors' })
          for (const other of context.pages()) if (other !== page) await other.close()
          // A test that signed in itself leaves the tab signed out, as a fresh one is, for the next to sign in.
          if (signInHere) await page.evaluate('sessionStorage.clear()').catch(() => {})
          await page.goto('about:blank')
        },
      }
    },
    close: () => context.close(),
  }
}

// The process's last resort for a rejection no code handled, for every command that runs a
// gateway (serve, demo): each background task reports its own failures, and this catches the rest.
import type { BackgroundTasks } from '../telemetry/index.ts'

/**
 * A rejection nobody handled is one promise's work that failed: logged with its stack, counted,
 * and the gateway keeps serving (Node 24 would exit on it).
 */
export function keepServingOnUnhandledRejection(background: BackgroundTasks): void {
  process.on('unhandledRejection', (reason) => {
    background.failed('unhandled_rejection', reason, { message: 'a promise rejected and nothing handled it: the gateway keeps serving' })
  })
}

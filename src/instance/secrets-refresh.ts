// Every refresh interval of the config in force (a reload that changes it restarts the timer):
// new secret versions (a rotation elsewhere, a changed file), due scheduled rotations, and the
// assertion and token exchange keys. Four tasks, each counted on its own: one that fails does not skip the others.
import type { Config } from '../config/index.ts'
import { applySecretValues } from '../gateway/index.ts'
import type { BackgroundTasks } from '../telemetry/index.ts'
import type { Live } from './live.ts'
import { adminFor } from './prepare.ts'

export interface SecretsRefresh {
  /** A reload changed the config: keep to its refresh interval. */
  follow(previous: Config, next: Config): void
  stop(): void
}

const refreshEvery = (config: Config) => config.secrets?.refresh_interval ?? 2_000

/**
 * `schedulesRotation`: whether this gateway runs secrets.rotation's schedule and rotates the
 * assertion and exchange keys when due. With server.workers only the first worker does (w1; a
 * replacement keeps the id): each worker ran it, so one due period ran the hook once per worker,
 * each with its own new value, and the value the upstream had been given first was gone from the
 * store (found by a probe); the keys were rotated twice. The others read the new versions at
 * their next refresh, as another gateway on the store would.
 */
export function startSecretsRefresh(live: Live, background: BackgroundTasks, schedulesRotation = true): SecretsRefresh {
  /**
   * New secret values into the upstreams' headers, the introspection client secret and the admin
   * token. Admin tokens the new values break (the same for both, white space: adminFor) do not
   * take over: the running ones stay, and the refresh fails, logged at error level.
   */
  function applySecrets(): void {
    applySecretValues(live.state.runtime, live.secrets.resolve)
    live.admin = adminFor(live.state.runtime.config, live.secrets)
  }
  function refresh(): void {
    void background.run('secrets_refresh', () => live.secrets.reread() && applySecrets())
    if (schedulesRotation) void background.run('secret_rotation', async () => (await live.secrets.rotateDue()) && applySecrets())
    void background.run('assertion_key_rotation', () => live.state.runtime.signing.assertions?.rotateIfDue(schedulesRotation))
    void background.run('exchange_key_rotation', () => live.state.runtime.signing.exchangeKeys?.refresh(schedulesRotation))
  }
  let timer = setInterval(refresh, refreshEvery(live.state.runtime.config)).unref()
  return {
    follow(previous, next) {
      if (refreshEvery(previous) === refreshEvery(next)) return
      clearInterval(timer)
      timer = setInterval(refresh, refreshEvery(next)).unref()
    },
    stop() {
      clearInterval(timer)
    },
  }
}

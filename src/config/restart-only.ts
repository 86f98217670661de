// Settings a process takes once, at its start: the listen addresses, TLS on or off, HTTP/2, the
// number of workers, the audit section, and the tracing exporter and log level (telemetry). A reload that changes them says they take effect at the
// next restart; a worker started in a running gateway (a crashed one's replacement) keeps the
// process's, as the workers it joins do, so one port never serves two protocols or two audit setups.
import { createHash } from 'node:crypto'
import type { AdminConfig, Config, ServerConfig } from './schema.ts'
import { workerCount } from './workers-checks.ts'

/** What the process started with, as data a worker thread is given (never read again from a file that may have changed). */
export interface StartSettings {
  listen: ServerConfig['listen']
  http2: ServerConfig['http2']
  tls: ServerConfig['tls']
  /** server.workers as written (`auto` too): the threads are started once. */
  workers: ServerConfig['workers']
  /** Node's HTTP/1.1 parser takes its header limit when the listener is made. */
  maxHeaderBytes: ServerConfig['max_header_bytes']
  adminListen: AdminConfig['listen']
  audit: Config['audit']
  /** The tracing exporter (startTracing) and the logger are made once; trace_url is read at each request. */
  telemetry: StartTelemetry
}

type StartTelemetry = Pick<Config['telemetry'], 'otlp_endpoint' | 'service_name' | 'log_level'>

function startTelemetryOf(telemetry: Config['telemetry']): StartTelemetry {
  return { otlp_endpoint: telemetry.otlp_endpoint, service_name: telemetry.service_name, log_level: telemetry.log_level }
}

export function startSettingsOf(config: Config): StartSettings {
  return { listen: config.server.listen, http2: config.server.http2, tls: config.server.tls, workers: config.server.workers, maxHeaderBytes: config.server.max_header_bytes, adminListen: config.admin.listen, audit: config.audit, telemetry: startTelemetryOf(config.telemetry) }
}

/**
 * What a reload to `next` leaves until the next restart, as warnings: compared with what the process
 * started with, not with the config before the reload, so every reload says so until the restart
 * (the second reload after an edit answered no warning while the edit still waited: a probe).
 */
export function restartOnlyChanges(started: StartSettings, next: Config): string[] {
  const changes: string[] = []
  if (next.server.listen.text !== started.listen.text || next.admin.listen.text !== started.adminListen.text) {
    changes.push('a changed listen address takes effect at the next restart')
  }
  if ((next.server.tls === undefined) !== (started.tls === undefined) || next.server.http2 !== started.http2) {
    changes.push('turning server.tls or server.http2 on or off takes effect at the next restart')
  }
  // A reload to another count answered ok with no word, and the gateway kept the threads it had (a probe).
  if (workerCount(next.server) !== workerCount({ workers: started.workers })) {
    changes.push('a changed server.workers takes effect at the next restart')
  }
  // README says so; the reload said nothing, and HTTP/1.1 requests kept the limit the listener was made with.
  if (next.server.max_header_bytes !== started.maxHeaderBytes) {
    changes.push('a changed server.max_header_bytes takes effect at the next restart')
  }
  if (JSON.stringify(next.audit) !== JSON.stringify(started.audit)) {
    changes.push('a changed audit section takes effect at the next restart')
  }
  // A reload answered ok with no word, and spans kept going (or not) where the process started (a probe).
  const telemetry = startTelemetryOf(next.telemetry)
  const changed = (Object.keys(telemetry) as Array<keyof StartTelemetry>).filter((key) => telemetry[key] !== started.telemetry[key])
  if (changed.length > 0) changes.push(`a changed ${changed.map((key) => `telemetry.${key}`).join(', ')} takes effect at the next restart`)
  return changes
}

/** `running` with what the process fixed at its start: the config a worker joining the others serves. */
export function withStartSettings(started: StartSettings, running: Config): Config {
  return {
    ...running,
    server: {
      ...running.server,
      listen: started.listen,
      http2: started.http2,
      workers: started.workers,
      // The running listeners keep TLS on or off; with TLS on they read a reload's certificate files.
      tls: started.tls && running.server.tls ? running.server.tls : started.tls,
    },
    admin: { ...running.admin, listen: started.adminListen },
    audit: started.audit,
    telemetry: { ...running.telemetry, ...started.telemetry },
  }
}

/**
 * SHA-256 of the checked config (hex, 16 characters), leaving out what only a restart applies (and
 * server.tls, whose presence is one): a replacement worker (withStartSettings) and the workers it
 * joins run one config and say so.
 */
export function configDigestOf(config: Config): string {
  const reloadable = { ...config, server: { ...config.server, listen: null, http2: null, tls: null, workers: null }, admin: { ...config.admin, listen: null }, audit: null, telemetry: { ...config.telemetry, otlp_endpoint: null, service_name: null, log_level: null } }
  return createHash('sha256').update(JSON.stringify(reloadable)).digest('hex').slice(0, 16)
}

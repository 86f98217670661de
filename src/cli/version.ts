import { readFileSync } from 'node:fs'

/** `bouncer X.Y.Z (node vN)`: the package's version, from the checkout or the build alike. */
export function versionLine(): string {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return `bouncer ${version} (node ${process.version})`
}

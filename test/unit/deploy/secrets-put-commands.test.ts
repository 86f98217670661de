// Found by an operations probe: the base ConfigMap told operators to store the admin token with
// `kubectl exec deploy/bouncer -- node …/bouncer.js secrets put admin-token …`: no value and no
// `-i`, so the command got an empty stdin and answered "the value on stdin is empty". Every
// `secrets put` that deploy/ and examples/ give to copy takes its value on a pipe, through
// `kubectl exec -i` where there is one.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ya?ml|md|sh|service)$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
}

it('gives every secrets put command its value on a pipe, and kubectl exec its stdin (-i)', () => {
  const commands = ['deploy', 'examples'].flatMap(filesUnder).flatMap((file) =>
    readFileSync(file, 'utf8').split('\n').filter((line) => /\bsecrets put\b/.test(line)).map((line) => ({ file, line: line.trim() })))
  expect(commands.length).toBeGreaterThan(0)
  const wrong = commands.filter(({ line }) => !/\|[^|]*\bsecrets put\b/.test(line) || (/kubectl exec\b/.test(line) && !/kubectl exec (-i|--stdin)\b/.test(line)))
  expect(wrong).toEqual([])
})

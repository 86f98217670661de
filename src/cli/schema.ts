// `bouncer schema`: the config's JSON Schema (draft 2020-12), for editors and CI. The same text is
// shipped as schema/bouncer.schema.json (`npm run schema` writes it; a test keeps it current).
import type { Command } from 'commander'
import { configJsonSchema } from '../config/index.ts'

export function schemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`
}

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description("print the config's JSON Schema (draft 2020-12), e.g. for an editor: # yaml-language-server: $schema=…")
    .action(() => {
      process.stdout.write(schemaText())
    })
}

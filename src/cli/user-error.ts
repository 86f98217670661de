/** A problem the user can fix: printed as one line, exit 1, never a stack trace (SPEC exit codes). */
export class UserError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'UserError'
    this.exitCode = exitCode
  }
}

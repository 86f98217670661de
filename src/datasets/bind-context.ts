// Which parameter PostgreSQL was binding when it refused a value, read from the error's context
// (`where`), in any language the server's lc_messages speaks.

/** English, as PostgreSQL writes it: `unnamed portal parameter $2`, `portal "c1" parameter $2 = '…'`. */
const ENGLISH = /^(?:unnamed portal|portal "[^"]*") parameter \$(\d+)\b/

/** A portal's quoted name as a translation quotes it: "C_1", »C_1«, «C_1», « C_1 » (pg-cursor names its portals C_n). */
const PORTAL_NAME = /"[^"]*"|»[^«]*«|«[^»]*»/g

/**
 * The parameter's position ($N, from 1) a bind context names; undefined for any other context.
 * A server whose lc_messages is not English translates it ("Portal »C_1« Parameter $1",
 * "portal sin nombre, parámetro 1", "이름없는 포탈 $1 매개 변수"): the 400 naming the parameter
 * was a 502 on such a server. Every translation PostgreSQL 15 ships is one line that, without its
 * quoted portal name, has no parentheses and one number before the value (" = '…'"); a function's
 * context is not ("PL/pgSQL function f(integer) line 3 at RETURN").
 */
export function boundParameterOf(where: string): number | undefined {
  const english = ENGLISH.exec(where)?.[1]
  if (english !== undefined) return Number(english)
  if (where.includes('\n')) return undefined
  const unnamed = where.replace(PORTAL_NAME, '')
  const valueAt = unnamed.indexOf(' = ')
  const head = valueAt === -1 ? unnamed : unnamed.slice(0, valueAt)
  if (/[()"«»“”'`]/.test(head)) return undefined
  const numbers = head.match(/\d+/g)
  return numbers?.length === 1 ? Number(numbers[0]) : undefined
}

// The bind context of PostgreSQL 15's every translation (its .mo files, msgid
// "unnamed portal parameter $%d" and "… = %s"), and contexts that name no parameter.
import { describe, expect, it } from 'vitest'
import { boundParameterOf } from '../../../src/datasets/bind-context.ts'

describe('boundParameterOf', () => {
  it.each([
    ['en', 'unnamed portal parameter $2'],
    ['en, the value shown', "unnamed portal parameter $2 = '9999999999'"],
    ['en, a named portal', 'portal "c_12" parameter $2'],
    ['de', 'unbenanntes Portal Parameter $2'],
    ['de, the value shown', "unbenanntes Portal Parameter $2 = '9999999999'"],
    ['de, pg-cursor\'s named portal (as the gateway meets it)', "Portal »C_1« Parameter $2 = '...'"],
    ['es, a named portal', 'portal «C_12» parámetro $2'],
    ['fr, a named portal', 'portail « C_12 » paramètre $2'],
    ['it, a named portal', 'parametro "C_12" del portale $2'],
    ['ko, a named portal', '"C_12" 포탈 $2 매개 변수'],
    ['uk, a named portal', 'параметр порталу "C_12": $2 = \'x\''],
    ['es (no $)', 'portal sin nombre, parámetro 2'],
    ['es, the value shown', "portal sin nombre, parámetro 2 = '12'"],
    ['fr', 'paramètre de portail non nommé $2'],
    ['it', 'parametro portale senza nome $2'],
    ['ja', '無名ポータルパラメータ $2'],
    ['ka', 'უსახელო პორტალის პარამეტრი $2'],
    ['ko (the number first)', '이름없는 포탈 $2 매개 변수'],
    ['ko, the value shown', "이름없는 포탈 $2 매개 변수 = '3 = 4'"],
    ['ru', 'неименованный портал, параметр $2'],
    ['sv', 'ej namngiven portalparameter $2'],
    ['uk', 'параметр порталу без назви $2'],
    ['zh_CN', '未命名 portal 的参数 $2'],
    ['zh_TW', '未命名 portal 的參數 $2 = \'x\''],
  ])('%s', (_language, where) => {
    expect(boundParameterOf(where)).toBe(2)
  })

  it.each([
    ['a function', 'PL/pgSQL function f(integer) line 3 at RETURN'],
    ['a function, translated', 'PL/pgSQL-Funktion f(integer) Zeile 3 bei RETURN'],
    ['a statement inside a function', 'SQL statement "SELECT 1"\nPL/pgSQL function f() line 2 at PERFORM'],
    ['no number', 'unbenanntes Portal Parameter'],
    ['two numbers', 'portal 7 parameter 2'],
    ['an unclosed quote', 'Portal »C_1 Parameter $2'],
  ])('no parameter: %s', (_what, where) => {
    expect(boundParameterOf(where)).toBeUndefined()
  })
})

// Node's subjectAltName text: entries joined by ", ", a value with special characters written as a
// JSON string (so a comma inside a value cannot forge a second entry).
import { describe, expect, it } from 'vitest'
import { subjectAltNames } from '../../../src/identity/x509.ts'

describe('subjectAltNames', () => {
  it('reads plain entries in order', () => {
    expect(subjectAltNames('URI:spiffe://prod/ns/etl/sa/loader, DNS:loader.etl.svc, IP Address:127.0.0.1')).toEqual([
      ['URI', 'spiffe://prod/ns/etl/sa/loader'], ['DNS', 'loader.etl.svc'], ['IP Address', '127.0.0.1'],
    ])
  })

  it('reads quoted values whole: a comma inside one is not a second entry', () => {
    expect(subjectAltNames('URI:"spiffe://prod/ns/a, URI:spiffe://prod/ns/admin", DNS:"x\\"y"')).toEqual([
      ['URI', 'spiffe://prod/ns/a, URI:spiffe://prod/ns/admin'], ['DNS', 'x"y'],
    ])
  })

  it('reads nothing from nothing', () => {
    expect(subjectAltNames(undefined)).toEqual([])
    expect(subjectAltNames('')).toEqual([])
  })
})

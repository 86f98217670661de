// A form POST's `_method` fields (src/http/method-override.ts): which bodies are read as forms, and
// every reading of a multipart body a framework may make, wider where they differ. The gateway's
// behaviour with a real upstream is in test/integration/authz-form-method-override.test.ts.
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors/index.ts'
import { formBodyOf, formMethodOverrides, type FormBody } from '../../../src/http/method-override.ts'

const post = (contentType: string | undefined, contentLength: number | undefined = 10, chunked = false) => formBodyOf('POST', { contentType, contentLength, chunked })

describe('formBodyOf: the POSTs whose body is read as a form', () => {
  it('urlencoded in any case and with parameters, and an empty Content-Type (Rack reads that as a form)', () => {
    for (const type of ['application/x-www-form-urlencoded', 'Application/X-WWW-Form-Urlencoded; charset=utf-8', ' application/x-www-form-urlencoded,text/plain', '', '  ']) {
      expect(post(type), type).toEqual({ kind: 'urlencoded' })
    }
    expect(post('application/x-www-form-urlencoded', undefined, true)).toEqual({ kind: 'urlencoded' })
  })

  it('any multipart, with every boundary PHP, busboy and Rack may read', () => {
    expect(post('multipart/form-data; boundary=abc')).toEqual({ kind: 'multipart', boundaries: ['abc'] })
    expect(post('multipart/mixed; boundary="a b"')).toEqual({ kind: 'multipart', boundaries: ['a b'] })
    // PHP and busboy read the first; Rack's greedy pattern the last, `xboundary=` included, with its spaces.
    expect(post('multipart/form-data; boundary=one; xboundary=two three')).toEqual({ kind: 'multipart', boundaries: ['one', 'two three', 'two'] })
  })

  it('no other request: another method, no body, another type, no Content-Type (untyped uploads stream)', () => {
    expect(post(undefined)).toBeNull()
    expect(formBodyOf('PUT', { contentType: 'application/x-www-form-urlencoded', contentLength: 10, chunked: false })).toBeNull()
    expect(post('application/x-www-form-urlencoded', 0)).toBeNull()
    expect(formBodyOf('POST', { contentType: undefined, contentLength: undefined, chunked: false })).toBeNull()
    for (const type of ['application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencodedx']) expect(post(type), type).toBeNull()
  })
})

const multipart = (boundaries: string[]): FormBody => ({ kind: 'multipart', boundaries })
const read = (form: FormBody, body: string) => formMethodOverrides('POST', form, Buffer.from(body, 'latin1'))

describe('formMethodOverrides', () => {
  it('urlencoded as the query is read', () => {
    expect(read({ kind: 'urlencoded' }, 'a=1&%5Fmethod=delete&.method=put&_method=POST')).toEqual(['DELETE', 'PUT'])
    expect(read({ kind: 'urlencoded' }, 'a=1&method=DELETE')).toEqual([])
  })

  it('multipart: CRLF or bare LF, quoted or unquoted names, any header case, folded headers, RFC 5987 names', () => {
    const cases = [
      '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n',
      '--b\nContent-Disposition: form-data; name="_method"\n\nDELETE\n--b--\n',
      '--b\r\ncontent-disposition:form-data;name=_method\r\n\r\nDELETE\r\n--b--',
      '--b\r\nContent-Disposition: form-data;\r\n name="_method"\r\n\r\nDELETE\r\n--b--',
      "--b\r\nContent-Disposition: form-data; name*=utf-8''%5Fmethod\r\n\r\nDELETE\r\n--b--",
      '--b\r\nContent-Disposition: form-data; x-name="_method"\r\n\r\nDELETE\r\n--b--',
      '--b\r\nContent-Disposition: form-data; name="_method[]"\r\n\r\ndelete\r\n--b--',
      '--b\r\nContent-Disposition: form-data; name=".method"\r\n\r\n DELETE \r\n--b--',
      'preamble--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--b--\r\n--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n',
    ]
    for (const body of cases) expect(read(multipart(['b']), body), JSON.stringify(body)).toEqual(['DELETE'])
  })

  it('multipart: under every boundary, and not a name that only contains _method', () => {
    const body = '--two\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPATCH\r\n--two--'
    expect(read(multipart(['one', 'two']), body)).toEqual(['PATCH'])
    expect(read(multipart(['b']), '--b\r\nContent-Disposition: form-data; filename="_method"; myname="_method"\r\n\r\nDELETE\r\n--b--')).toEqual([])
    expect(read(multipart(['b']), '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPOST\r\n--b--')).toEqual([])
  })

  it('a Content-Disposition line in a part\'s value, or not at a line\'s start, is no part\'s head', () => {
    const inFile = '--b\r\nContent-Disposition: form-data; name="f"; filename="dump.txt"\r\n\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--'
    expect(read(multipart(['b']), inFile)).toEqual([])
    expect(read(multipart(['b']), '--b\r\nX: y Content-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--')).toEqual([])
    expect(read(multipart(['b']), '--b\r\nX: y\r\n  Content-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--')).toEqual(['DELETE'])
  })

  it('bounded work: more than 1,000 _method fields, 8 boundaries, or a value past 64 KiB are refused 400', () => {
    const part = '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPOST\r\n'
    expect(read(multipart(['b']), part.repeat(1_000))).toEqual([])
    expect(() => read(multipart(['b']), part.repeat(1_001))).toThrow(/more than 1000 _method/)
    expect(() => read({ kind: 'urlencoded' }, '_method=POST&'.repeat(1_001))).toThrow(/more than 1000 _method/)
    expect(() => read(multipart(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']), part)).toThrow(GatewayError)
    expect(() => read(multipart(['b']), `--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\n${' '.repeat(70_000)}DELETE\r\n--b--`)).toThrow(GatewayError)
  })

  it('a value that is no method: 400 bad_request', () => {
    expect(() => read(multipart(['b']), '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDE LETE\r\n--b--')).toThrow(GatewayError)
  })
})

describe('a body at max_body_bytes (10 MB) is read in one pass, whatever its shape', () => {
  const read = (type: string, text: string) => {
    const body = Buffer.from(text, 'latin1')
    return formMethodOverrides('POST', formBodyOf('POST', { contentType: type, contentLength: body.length, chunked: false }) as FormBody, body)
  }
  const MB10 = 10 * 1024 * 1024

  it('Content-Disposition headers on one line, or one line of megabytes: no quadratic scan, no RangeError (a 500)', () => {
    expect(read('multipart/form-data; boundary=b', `--b\r\n${'content-disposition:'.repeat(MB10 / 20)}`)).toEqual([])
    // A part head longer than any framework reads, naming _method: refused as unreadable, 400.
    let refused: unknown
    try {
      read('multipart/form-data; boundary=b', `--b\r\ncontent-disposition: form-data; name=_method${' x'.repeat(MB10 / 2)}\r\n\r\nDELETE\r\n--b--`)
    } catch (err) {
      refused = err
    }
    expect(refused).toBeInstanceOf(GatewayError)
    expect((refused as GatewayError).status).toBe(400)
    // Headers folded over many lines are one header.
    expect(read('multipart/form-data; boundary=b', `--b\r\ncontent-disposition: form-data;\r\n name="_method"\r\n\r\nPUT\r\n--b--`)).toEqual(['PUT'])
  })

  it('urlencoded: a run of megabytes of spaces is no RangeError (a 500)', () => {
    expect(read('application/x-www-form-urlencoded', `&${' '.repeat(MB10)}`)).toEqual([])
    expect(read('application/x-www-form-urlencoded', `a=1&${' %20'.repeat(1000)}_method=DELETE`)).toEqual(['DELETE'])
  })
})

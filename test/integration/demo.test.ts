// `npm start` runs `bouncer demo`: it must start on a fresh machine, serve, and stop on Ctrl-C.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.ts'

describe('bouncer demo', () => {
  it('starts the data API and the gateway, serves fresh data, and stops cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    await expect.poll(() => stdout, { timeout: 15_000 }).toContain('Ctrl-C stops everything')
    const gateway = /gateway listening on (\S+)/.exec(stdout)?.[1] as string

    const first = await request(`${gateway}/reports/daily/eu`)
    const report = (await first.body.json()) as { region: string; generated_at: string }
    expect(first.statusCode).toBe(200)
    expect(report.region).toBe('eu')
    await new Promise((r) => setTimeout(r, 5))
    const second = (await (await request(`${gateway}/reports/daily/eu`)).body.json()) as { generated_at: string }
    expect(second.generated_at).not.toBe(report.generated_at) // fresh on every call

    const csv = await request(`${gateway}/exports/orders.csv`)
    expect(csv.headers['content-type']).toBe('text/csv')
    expect(await csv.body.text()).toMatch(/^region,orders_today,as_of\n/)
    expect(stdout).toContain(`curl -s ${gateway}/reports/daily/eu`)

    child.kill('SIGINT')
    const [code] = (await once(child, 'exit')) as [number]
    expect(code).toBe(0)
  })
})

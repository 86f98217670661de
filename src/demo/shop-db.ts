// The demo's dataset: an SQLite file of orders, written fresh at every demo start (the dates follow
// today, so "the last 30 days" always has rows). The gateway opens it read-only.
import { rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'

const REGIONS = ['eu', 'us']
const DOMAINS = ['example.com', 'shop.test', 'mail.example']
const NAMES = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'ken', 'margaret', 'dennis']

export function writeShopDatabase(path: string, orders = 120): void {
  rmSync(path, { force: true })
  const db = new DatabaseSync(path)
  try {
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, customer_email TEXT NOT NULL, total REAL NOT NULL, created_at DATE NOT NULL)')
    const insert = db.prepare('INSERT INTO orders VALUES (?, ?, ?, ?, ?)')
    const today = Math.floor(Date.now() / 86_400_000) * 86_400_000
    db.exec('BEGIN')
    for (let i = 1; i <= orders; i++) {
      const name = NAMES[i % NAMES.length] as string
      const email = `${name}.${i}@${DOMAINS[i % DOMAINS.length] as string}`
      const day = new Date(today - (i % 45) * 86_400_000).toISOString().slice(0, 10)
      insert.run(i, REGIONS[i % REGIONS.length] as string, email, Math.round(((i * 37) % 500) * 100 + 999) / 100, day)
    }
    db.exec('COMMIT')
  } finally {
    db.close()
  }
}

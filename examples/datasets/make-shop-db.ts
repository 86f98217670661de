// Writes examples/datasets/shop.db: 120 orders over the last 45 days (the demo's dataset), for the
// sqlite datasource of bouncer.yaml beside it. Run: npx node examples/datasets/make-shop-db.ts
import { fileURLToPath } from 'node:url'
import { writeShopDatabase } from '../../src/demo/shop-db.ts'

const path = fileURLToPath(new URL('./shop.db', import.meta.url))
writeShopDatabase(path)
console.log(`wrote ${path}`)

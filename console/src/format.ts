export const time = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace('Z', '')
export const ms = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : value < 10 ? value.toFixed(2) : value.toFixed(0))
export const count = (n: number): string => n.toLocaleString('en')
export const ago = (iso: string | null): string => {
  if (!iso) return 'never'
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000)
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`
}

// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function, top N.
//   node bench/profile-summary.ts FILE.cpuprofile [N]
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

export function summarise(file: string, top = 30): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const byFunction = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const time = selfTime.get(node.id) ?? 0
    total += time
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${url.replace(/^.*\/(node_modules\/|src\/)/, '$1')}:${lineNumber + 1}` : ''
    const key = `${functionName || '(anonymous)'} ${where}`.trim()
    byFunction.set(key, (byFunction.get(key) ?? 0) + time)
  }
  const rows = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
  return rows.map(([name, time]) => `${((time / total) * 100).toFixed(1).padStart(5)}%  ${name}`).join('\n')
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  console.log(summarise(process.argv[2] as string, Number(process.argv[3] ?? 30)))
}

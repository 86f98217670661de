// Renders a kustomization the way `kubectl apply -k` would, for the subset our manifests use:
// `resources` (files, or folders with their own kustomization.yaml) and `patches` given by
// `path` (strategic merge patches: maps merge, lists of named things merge by name — volumeMounts
// by mountPath — other lists are replaced, and null deletes a key). Anything else in a
// kustomization.yaml is refused, so a manifest cannot use a feature the test would ignore.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; [key: string]: unknown }; [key: string]: unknown }

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'patches'])

export function readManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`)
    return doc.toJS() as Manifest
  }).filter((doc) => doc !== null)
}

export function renderKustomization(dir: string): Manifest[] {
  const [kustomization] = readManifests(join(dir, 'kustomization.yaml')) as unknown as Array<Record<string, unknown>>
  if (!kustomization || kustomization.kind !== 'Kustomization') throw new Error(`${dir}: kustomization.yaml is not a Kustomization`)
  const unsupported = Object.keys(kustomization).filter((key) => !SUPPORTED.has(key))
  if (unsupported.length > 0) throw new Error(`${dir}: the test renderer does not support ${unsupported.join(', ')}`)
  const out: Manifest[] = []
  for (const resource of (kustomization.resources ?? []) as string[]) {
    const path = join(dir, resource)
    out.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readManifests(path)))
  }
  for (const patch of (kustomization.patches ?? []) as Array<Record<string, unknown>>) {
    const keys = Object.keys(patch)
    if (keys.length !== 1 || typeof patch.path !== 'string') throw new Error(`${dir}: only patches given by path are supported, not ${keys.join(', ')}`)
    for (const change of readManifests(join(dir, patch.path))) {
      const target = out.findIndex((m) => m.kind === change.kind && m.metadata.name === change.metadata.name)
      if (target === -1) throw new Error(`${dir}: ${patch.path} patches ${change.kind}/${change.metadata.name}, which no resource defines`)
      out[target] = strategicMerge(out[target], change) as Manifest
    }
  }
  const seen = new Set<string>()
  for (const m of out) {
    const id = `${m.kind}/${m.metadata.name}`
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`)
    seen.add(id)
  }
  return out
}

function mergeKey(field: string | undefined): string {
  return field === 'volumeMounts' ? 'mountPath' : 'name'
}

export function strategicMerge(base: unknown, patch: unknown, field?: string): unknown {
  if (Array.isArray(patch)) {
    const key = mergeKey(field)
    if (!Array.isArray(base) || !patch.every((item) => item !== null && typeof item === 'object' && key in item)) return patch
    const merged = [...base] as Array<Record<string, unknown>>
    for (const item of patch as Array<Record<string, unknown>>) {
      const at = merged.findIndex((b) => b[key] === item[key])
      if (at === -1) merged.push(item)
      else merged[at] = strategicMerge(merged[at], item) as Record<string, unknown>
    }
    return merged
  }
  if (patch === null || typeof patch !== 'object') return patch
  if (base === null || typeof base !== 'object' || Array.isArray(base)) base = {}
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = strategicMerge(out[k], v, k)
  }
  return out
}


// The Kubernetes manifests (deploy/kubernetes/), rendered as `kubectl apply -k` would and checked
// without a cluster: every object against its Kubernetes schema (kubernetes-models), the
// ServiceMonitor against the fields of its CRD we use, the ConfigMap's bouncer.yaml by the
// gateway's own config loader, and the references between them (names, ports, probes, labels).
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1'
import { loadConfigText } from '../../../src/config/index.ts'
import { schemaErrors, type Schema } from '../../helpers/json-schema.ts'
import { readManifests, renderKustomization, strategicMerge, type Manifest } from '../../helpers/kustomize.ts'

const ROOT = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url))
const OVERLAYS = readdirSync(`${ROOT}overlays`)

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
}

// The part of the Prometheus Operator's ServiceMonitor CRD (monitoring.coreos.com/v1) these
// manifests use, closed to other keys so that a misspelt one fails (kubernetes-models has no
// model for it; @kubernetes-models/prometheus-operator is not a dependency).
const SERVICE_MONITOR: Schema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'monitoring.coreos.com/v1' },
    kind: { const: 'ServiceMonitor' },
    metadata: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, labels: { type: 'object' } } },
    spec: {
      type: 'object',
      required: ['selector', 'endpoints'],
      additionalProperties: false,
      properties: {
        selector: { type: 'object', additionalProperties: false, properties: { matchLabels: { type: 'object' } } },
        endpoints: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              port: { type: 'string' },
              path: { type: 'string' },
              interval: { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' },
              relabelings: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    sourceLabels: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' } },
                    targetLabel: { type: 'string' },
                    action: { enum: ['replace', 'Replace', 'keep', 'Keep', 'drop', 'Drop', 'labelmap', 'LabelMap', 'labeldrop', 'LabelDrop', 'labelkeep', 'LabelKeep'] },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
}

function validate(manifest: Manifest): void {
  if (manifest.kind === 'ServiceMonitor') {
    expect(schemaErrors(manifest, SERVICE_MONITOR)).toEqual([])
    return
  }
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`]
  if (!Model) throw new Error(`no model for ${manifest.apiVersion} ${manifest.kind}`)
  new Model(manifest as never).validate()
}

type Container = { name: string; ports: Array<{ name: string; containerPort: number }>; env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>; readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string; port: string } }; volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }
type PodSpec = { terminationGracePeriodSeconds: number; containers: Container[]; volumes: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }> }

function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name))
  if (!found) throw new Error(`no ${kind}${name ? `/${name}` : ''}`)
  return found
}

function podOf(manifests: Manifest[]): { spec: PodSpec; labels: Record<string, string>; container: Container } {
  const deployment = find(manifests, 'Deployment', 'bouncer') as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }
  const spec = deployment.spec.template.spec
  return { spec, labels: deployment.spec.template.metadata.labels, container: spec.containers[0] as Container }
}

describe('deploy/kubernetes', () => {
  it('has the overlays the docs name', () => {
    expect(OVERLAYS.sort()).toEqual(['several', 'single'])
  })

  for (const overlay of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)]) {
    describe(overlay, () => {
      const manifests = renderKustomization(`${ROOT}${overlay}`)

      it('renders objects that each validate against their Kubernetes schema', () => {
        expect(manifests.length).toBeGreaterThan(4)
        for (const manifest of manifests) validate(manifest)
      })

      it('probes the admin port: /readyz for readiness, /healthz for liveness', () => {
        const { container } = podOf(manifests)
        expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' })
        expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' })
        expect(container.ports.map((p) => p.name).sort()).toEqual(['admin', 'http'])
      })

      // Found by an adversarial probe: the pods carried the namespace's service account token,
      // which the gateway never uses and a function's code or an exploit could.
      it('runs unprivileged: non-root, read-only root, no capabilities or escalation, RuntimeDefault seccomp, no API token', () => {
        const pod = podOf(manifests).spec as unknown as { automountServiceAccountToken?: boolean; securityContext: Record<string, unknown>; containers: Array<{ securityContext: Record<string, unknown> }> }
        expect(pod.automountServiceAccountToken).toBe(false)
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } })
        expect(pod.containers[0]?.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } })
      })

      // Found by an adversarial probe: overlays/several's placeholder Secret held
      // `admin-token: REPLACE-with-a-long-random-token`, which `bouncer check` took as it was: a
      // deployment that kept it ran its admin API under a token anyone could read in the repository.
      // (The master key's placeholder is refused by the embedded store: not 32 bytes of base64.)
      it('holds no credential the config reads from its secrets store in a placeholder Secret', () => {
        const configMap = find(manifests, 'ConfigMap', 'bouncer-config') as unknown as { data: Record<string, string> }
        const referenced = [...(configMap.data['bouncer.yaml'] as string).matchAll(/\$\{secret:([^}]+)\}/g)].map((m) => m[1])
        for (const secret of manifests.filter((m) => m.kind === 'Secret') as unknown as Array<{ metadata: { name: string }; stringData?: Record<string, string> }>) {
          expect(Object.keys(secret.stringData ?? {}).filter((key) => referenced.includes(key)), secret.metadata.name).toEqual([])
        }
      })

      // Found by the deploy probe: the compile cache was off in the pods. bin/bouncer.js keeps its
      // default folder only in a temp folder no other account can write, and the pod's /tmp is an
      // emptyDir (mode 777, not sticky); NODE_COMPILE_CACHE, the operator's own folder, it takes as given.
      it("keeps Node's compile cache in a folder of a writable volume the pod mounts", () => {
        const { spec, container } = podOf(manifests)
        const cache = container.env?.find((e) => e.name === 'NODE_COMPILE_CACHE')?.value
        expect(cache).toBe('/tmp/bouncer-compile-cache')
        const mount = container.volumeMounts.find((m) => cache?.startsWith(`${m.mountPath}/`))
        expect(mount).toMatchObject({ name: 'tmp', mountPath: '/tmp' })
        expect(mount?.readOnly).not.toBe(true)
        expect(spec.volumes.find((v) => v.name === mount?.name)).toEqual({ name: 'tmp', emptyDir: {} })
      })

      it('names only ConfigMaps, Secrets and claims it defines, and mounts every volume it declares', () => {
        const { spec, container } = podOf(manifests)
        for (const volume of spec.volumes) {
          if (volume.configMap) find(manifests, 'ConfigMap', volume.configMap.name)
          if (volume.secret) find(manifests, 'Secret', volume.secret.secretName)
          if (volume.persistentVolumeClaim) find(manifests, 'PersistentVolumeClaim', volume.persistentVolumeClaim.claimName)
          expect(container.volumeMounts.map((m) => m.name)).toContain(volume.name)
        }
        for (const env of container.env ?? []) {
          const ref = env.valueFrom?.secretKeyRef
          if (!ref) continue
          const secret = find(manifests, 'Secret', ref.name) as unknown as { stringData: Record<string, string> }
          expect(Object.keys(secret.stringData)).toContain(ref.key)
        }
      })

      it('selects its own pods from the Service, the ServiceMonitor, the budget and the autoscaler', () => {
        const { labels } = podOf(manifests)
        const service = find(manifests, 'Service') as unknown as { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> } }
        expect(labels).toMatchObject(service.spec.selector)
        expect(service.spec.ports.map((p) => p.targetPort).sort()).toEqual(['admin', 'http'])
        const monitor = find(manifests, 'ServiceMonitor') as unknown as { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> } }
        expect((find(manifests, 'Service') as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels).toMatchObject(monitor.spec.selector.matchLabels)
        expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' })
        for (const m of manifests.filter((x) => x.kind === 'PodDisruptionBudget')) expect(labels).toMatchObject((m as unknown as { spec: { selector: { matchLabels: Record<string, string> } } }).spec.selector.matchLabels)
        for (const m of manifests.filter((x) => x.kind === 'HorizontalPodAutoscaler')) expect((m as unknown as { spec: { scaleTargetRef: unknown } }).spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'bouncer' })
      })

      it('carries a bouncer.yaml the gateway loads, whose listeners, drain and paths fit the pod', () => {
        const { spec, container } = podOf(manifests)
        const configMap = find(manifests, 'ConfigMap', 'bouncer-config') as unknown as { data: Record<string, string> }
        const env = { REDIS_URL: 'redis://redis:6379', AUDIT_DATABASE_URL: 'postgres://bouncer@postgres/bouncer', BOUNCER_INSTANCE: 'bouncer-abc12' }
        const loaded = loadConfigText(configMap.data['bouncer.yaml'] as string, '/etc/bouncer/bouncer.yaml', env)
        expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
        const config = loaded.config!
        const port = (name: string) => container.ports.find((p) => p.name === name)?.containerPort
        expect(config.server.listen.port).toBe(port('http'))
        expect(config.admin.listen.port).toBe(port('admin'))
        expect(config.admin.listen.host).toBe('0.0.0.0') // the kubelet's probes come from outside the pod
        expect(config.server.watch_config).toBe(true)
        expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.server.shutdown_timeout + 5_000)
        const mounts = container.volumeMounts.map((m) => m.mountPath)
        expect(mounts).toContain('/etc/bouncer')
        expect(config.audit.spill_dir.startsWith('/var/lib/bouncer/')).toBe(true)
        expect(mounts).toContain('/var/lib/bouncer')
      })
    })
  }

  it('several: Redis and PostgreSQL from the stores Secret, 2-10 replicas on CPU, one away at a time', () => {
    const manifests = renderKustomization(`${ROOT}overlays/several`)
    const config = loadConfigText((find(manifests, 'ConfigMap', 'bouncer-config') as unknown as { data: Record<string, string> }).data['bouncer.yaml'] as string, '/etc/bouncer/bouncer.yaml', { REDIS_URL: 'redis://r:6379', AUDIT_DATABASE_URL: 'postgres://p/b' }).config!
    expect(config.limits_store).toMatchObject({ type: 'redis', url: 'redis://r:6379' })
    expect(config.audit.sinks[0]).toMatchObject({ type: 'postgres', url: 'postgres://p/b' })
    const hpa = find(manifests, 'HorizontalPodAutoscaler') as unknown as { spec: { minReplicas: number; maxReplicas: number; metrics: Array<{ resource: { name: string } }> } }
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 10 })
    expect(hpa.spec.metrics[0]?.resource.name).toBe('cpu')
    expect((find(manifests, 'PodDisruptionBudget') as unknown as { spec: { maxUnavailable: number } }).spec.maxUnavailable).toBe(1)
    // Found by an adversarial probe: the Deployment said `replicas: 3` beside the autoscaler, and
    // every `kubectl apply -k` (a config edit) set a fleet the autoscaler had grown back to 3.
    expect(find(manifests, 'Deployment').spec).not.toHaveProperty('replicas')
    const { container } = podOf(manifests)
    expect(container.env?.map((e) => e.name)).toEqual(['BOUNCER_INSTANCE', 'NODE_OPTIONS', 'NODE_COMPILE_CACHE', 'REDIS_URL', 'AUDIT_DATABASE_URL'])
  })

  it('single: one replica, replaced not rolled, its state on a claim instead of an emptyDir', () => {
    const manifests = renderKustomization(`${ROOT}overlays/single`)
    const deployment = find(manifests, 'Deployment') as unknown as { spec: { replicas: number; strategy: { type: string } } }
    expect(deployment.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } })
    const state = podOf(manifests).spec.volumes.find((v) => v.name === 'state')
    expect(state).toEqual({ name: 'state', persistentVolumeClaim: { claimName: 'bouncer-state' } })
  })
})

// Opt-in, in no overlay: it needs the labels of the operator's namespaces.
describe('deploy/kubernetes/network-policy', () => {
  type Peer = { namespaceSelector?: { matchLabels: Record<string, string> } }
  type Policy = { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Array<{ from: Peer[]; ports: Array<{ port: string; protocol: string }> }> } }
  const policy = renderKustomization(`${ROOT}network-policy`)

  it('is one NetworkPolicy that validates against its Kubernetes schema, in no overlay unless added', () => {
    expect(policy.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(['NetworkPolicy/bouncer'])
    for (const manifest of policy) validate(manifest)
    for (const overlay of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)]) expect(renderKustomization(`${ROOT}${overlay}`).map((m) => m.kind)).not.toContain('NetworkPolicy')
  })

  for (const overlay of OVERLAYS) {
    it(`added to ${overlay}: selects its pods, and opens http to the ingress controller's namespace and admin to the monitoring namespace, nothing else`, () => {
      const { labels, container } = podOf(renderKustomization(`${ROOT}overlays/${overlay}`))
      const { spec } = policy[0] as unknown as Policy
      expect(labels).toMatchObject(spec.podSelector.matchLabels)
      expect(spec.policyTypes).toEqual(['Ingress'])
      const opened = spec.ingress.map((rule) => ({
        ports: rule.ports.map((p) => `${p.port}/${p.protocol}`),
        from: rule.from.map((peer) => peer.namespaceSelector?.matchLabels),
      }))
      expect(opened).toEqual([
        { ports: ['http/TCP'], from: [{ 'kubernetes.io/metadata.name': 'ingress-nginx' }] },
        { ports: ['admin/TCP'], from: [{ 'kubernetes.io/metadata.name': 'monitoring' }] },
      ])
      // Named ports: each is a port of the container, the admin one the port Prometheus scrapes.
      const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]))
      expect({ http: ports.http, admin: ports.admin }).toEqual({ http: 8080, admin: 9090 })
    })
  }
})

describe('the test renderer', () => {
  it('merges named lists by name, replaces other lists, deletes on null', () => {
    const base = { spec: { containers: [{ name: 'a', env: [{ name: 'X', value: '1' }], args: ['one'] }], volumes: [{ name: 'v', emptyDir: {} }] } }
    const patch = { spec: { containers: [{ name: 'a', env: [{ name: 'Y', value: '2' }], args: ['two'] }], volumes: [{ name: 'v', emptyDir: null, secret: { secretName: 's' } }] } }
    expect(strategicMerge(base, patch)).toEqual({
      spec: { containers: [{ name: 'a', env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }], args: ['two'] }], volumes: [{ name: 'v', secret: { secretName: 's' } }] },
    })
  })

  it('reads every manifest file as YAML', () => {
    expect(readManifests(`${ROOT}base/deployment.yaml`)[0]?.kind).toBe('Deployment')
  })
})

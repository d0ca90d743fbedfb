// The stateless web tier: ServiceAccount, Deployment, Service, HPA, PDB, NetworkPolicy.
// Typed L1 constructs (cdk8s-plus-27's k8s imports) rather than L2: under server-side apply
// every field we send becomes ours, so we send only what the app asked for and our
// decisions, not a library's defaults (imagePullPolicy: Always, resource limits, HPA behavior).
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import { namespacesPeer, scrapeIngress } from '../shared/egress.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { withContainers } from '../shared/chart.ts';
import { metadataOf, nameOf, selectorOf } from '../shared/meta.ts';
import { resourcesOf } from '../shared/quantity.ts';
import { appDeployment } from '../shared/app-pod.ts';

export const WEB_SERVICE_PORT = 80;
/** How long a terminating web pod goes on serving before SIGTERM (within the 30 s grace). */
export const PRE_STOP_SLEEP_SECONDS = 5;

/**
 * A terminating pod leaves the Service's endpoints while the kubelet stops it, and every
 * node's Service rules follow a moment later: an app that closes its port at SIGTERM refuses
 * the connections still routed to it. preStop's sleep action holds SIGTERM back meanwhile and
 * needs no binary in the app's image (on by default from Kubernetes 1.30; an API server with
 * the PodLifecycleSleepAction gate turned off drops the handler: docs/compatibility.md).
 * Set on the synthesized JSON: the typed L1 classes model Kubernetes 1.27, whose toJson keeps
 * only exec, httpGet and tcpSocket, so `sleep` given to them is dropped and the API server
 * rejects the empty handler left behind (422 "preStop: Required value").
 */
export function withPreStopSleep(obj: K8sObject, container: string, seconds: number): K8sObject {
  const lifecycle = { preStop: { sleep: { seconds } } };
  return withContainers(obj, (c) => (c.name === container ? { ...c, lifecycle } : c));
}

/**
 * The container port the web pods serve metrics on, by name: a port of its own ('metrics')
 * when web.metrics.port differs from the app's port, else 'http'. Undefined when unset.
 */
export function webMetricsPort(app: AppModel): { name: string; port: number } | undefined {
  const m = app.web.metrics;
  if (!m) return undefined;
  const port = m.port ?? app.web.port;
  return { name: port === app.web.port ? 'http' : 'metrics', port };
}

export function buildWeb(app: AppModel, wiring: AppWiring): K8sObject[] {
  const objects = synth((chart) => {
    const name = nameOf(app, 'web');
    const selector = selectorOf(app, 'web');
    const meta = metadataOf(app, 'web', name);
    new k8s.KubeServiceAccount(chart, 'sa', {
      metadata: meta,
      automountServiceAccountToken: false,
    });
    webDeployment(chart, app, name, selector, wiring);
    new k8s.KubeService(chart, 'svc', {
      metadata: meta,
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [
          { name: 'http', port: WEB_SERVICE_PORT, targetPort: k8s.IntOrString.fromString('http') },
        ],
      },
    });
    const { minReplicas, maxReplicas, targetCPUUtilization, scaleDownStabilizationSeconds } =
      app.web.autoscaling;
    new k8s.KubeHorizontalPodAutoscalerV2(chart, 'hpa', {
      metadata: meta,
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        minReplicas,
        maxReplicas,
        metrics: [
          {
            type: 'Resource',
            resource: {
              name: 'cpu',
              target: { type: 'Utilization', averageUtilization: targetCPUUtilization },
            },
          },
        ],
        // Only what the app asked for: under server-side apply, a behavior we sent would
        // become ours, and Kubernetes' defaults are the right ones otherwise.
        ...(scaleDownStabilizationSeconds === undefined
          ? {}
          : {
              behavior: {
                scaleDown: { stabilizationWindowSeconds: scaleDownStabilizationSeconds },
              },
            }),
      },
    });
    // One pod at a time may go during node drains; with a single replica that would block
    // drains forever, so the budget then allows the disruption.
    new k8s.KubePodDisruptionBudget(chart, 'pdb', {
      metadata: meta,
      spec: {
        maxUnavailable: k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: selector },
      },
    });
    webNetworkPolicy(chart, app, name, selector);
  });
  return objects.map((o) => withPreStopSleep(o, 'web', PRE_STOP_SLEEP_SECONDS));
}

export function webEnv(app: AppModel, wiring: AppWiring): EnvVar[] {
  return [
    { name: 'PORT', value: String(app.web.port) },
    ...wiring.env,
    ...app.web.env.map(userEnv),
  ];
}

function userEnv(e: AppModel['web']['env'][number]): EnvVar {
  if (e.value !== undefined) return { name: e.name, value: e.value };
  const from = e.valueFrom;
  return {
    name: e.name,
    valueFrom: from?.secretKeyRef
      ? { secretKeyRef: { name: from.secretKeyRef.name, key: from.secretKeyRef.key } }
      : {
          configMapKeyRef: {
            name: from?.configMapKeyRef?.name ?? '',
            key: from?.configMapKeyRef?.key ?? '',
          },
        },
  };
}

function webDeployment(
  chart: Chart,
  app: AppModel,
  name: string,
  selector: Record<string, string>,
  wiring: AppWiring,
) {
  const { web } = app;
  const metrics = webMetricsPort(app);
  // No replicas: the HorizontalPodAutoscaler owns the count.
  appDeployment(chart, 'deploy', {
    app,
    tier: 'web',
    name,
    selector,
    wiring,
    container: {
      name: 'web',
      image: web.image,
      ports: [
        { name: 'http', containerPort: web.port, protocol: 'TCP' },
        ...(metrics && metrics.name !== 'http'
          ? [{ name: metrics.name, containerPort: metrics.port, protocol: 'TCP' }]
          : []),
      ],
      env: webEnv(app, wiring),
      // /tmp (up to 256Mi) and logs.
      resources: resourcesOf(web.resources, '256Mi'),
      readinessProbe: {
        httpGet: {
          path: web.probes.readinessPath,
          port: k8s.IntOrString.fromString('http'),
        },
        periodSeconds: 5,
        failureThreshold: 3,
      },
      // Readiness takes a slow pod out of rotation within 15 s; liveness restarts it
      // only after a minute, and without livenessPath only when the process no
      // longer accepts connections (a slow dependency must not restart every pod).
      livenessProbe: {
        ...(web.probes.livenessPath === undefined
          ? { tcpSocket: { port: k8s.IntOrString.fromString('http') } }
          : {
              httpGet: {
                path: web.probes.livenessPath,
                port: k8s.IntOrString.fromString('http'),
              },
            }),
        initialDelaySeconds: 10,
        periodSeconds: 10,
        failureThreshold: 6,
      },
    },
  });
}

type Peer = k8s.NetworkPolicyPeer;

/** web.allowFrom's entries as NetworkPolicy peers (rules.ts guarantees each is one kind). */
function allowFromPeers(entries: NonNullable<AppModel['web']['allowFrom']>): Peer[] {
  return entries.map((e) =>
    e.ipBlock
      ? {
          ipBlock: {
            cidr: e.ipBlock.cidr,
            ...(e.ipBlock.except?.length ? { except: [...e.ipBlock.except] } : {}),
          },
        }
      : {
          ...(e.namespaceSelector
            ? { namespaceSelector: { matchLabels: { ...e.namespaceSelector.matchLabels } } }
            : {}),
          ...(e.podSelector
            ? { podSelector: { matchLabels: { ...e.podSelector.matchLabels } } }
            : {}),
        },
  );
}

/**
 * Only the ingress path (web.allowFrom, else the operator-wide ingress-controller
 * namespaces; plus the Gateway's namespace) and this app's own pods may reach the web port;
 * Prometheus the metrics port.
 */
function webNetworkPolicy(
  chart: Chart,
  app: AppModel,
  name: string,
  selector: Record<string, string>,
) {
  const metrics = webMetricsPort(app);
  const gateway = app.ingress?.gateway ? [app.ingress.gateway.namespace ?? app.namespace] : [];
  const allowFrom = app.web.allowFrom;
  // An empty namespace list would be an invalid In selector: leave the peer out instead.
  const namespaces = allowFrom ? gateway : [...app.network.ingressNamespaces, ...gateway];
  const ingressPath = [
    ...(allowFrom ? allowFromPeers(allowFrom) : []),
    ...(namespaces.length > 0 ? [namespacesPeer(namespaces)] : []),
  ];
  new k8s.KubeNetworkPolicy(chart, 'netpol', {
    metadata: metadataOf(app, 'web', name),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { 'scalable.dev/app': app.name } } },
            ...ingressPath,
          ],
          ports: [{ port: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
        },
        // Prometheus (the PodMonitor's, or a platform's own with monitoring off) from the
        // operator-wide monitoring namespaces only: when metrics share the app port, a rule
        // without `from` would open the app itself to every pod of the cluster.
        ...(metrics ? [scrapeIngress(app, [metrics.name])] : []),
      ],
    },
  });
}

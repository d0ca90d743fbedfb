// The Deployment an app pod runs in (the web tier's and each queue worker's): the user's image
// with what every tier wires in (app-wiring.ts), Pod Security "restricted", no API token, no
// service links, a /tmp emptyDir, spread over zones, and rollouts that never take a ready pod
// away before its replacement is ready. No replicas: an HPA or a ScaledObject owns them.
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring } from '../tier.ts';
import { k8s } from './k8s.ts';
import { labelsOf, metadataOf } from './meta.ts';
import type { TierName } from './meta.ts';
import {
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
  topologySpreadOf,
} from './pod-security.ts';
import { quantity } from './quantity.ts';

export interface AppDeploymentProps {
  readonly app: AppModel;
  readonly tier: TierName;
  readonly component?: string | undefined;
  /** The Deployment's and its ServiceAccount's name. */
  readonly name: string;
  readonly selector: Record<string, string>;
  readonly wiring: AppWiring;
  /** The app's container; its security context, /tmp and the tiers' mounts are added. */
  readonly container: k8s.Container;
  readonly terminationGracePeriodSeconds?: number;
}

export function appDeployment(chart: Chart, id: string, p: AppDeploymentProps) {
  const { app, tier, component, wiring } = p;
  const spread = topologySpreadOf(app, p.selector);
  new k8s.KubeDeployment(chart, id, {
    metadata: metadataOf(app, tier, p.name, component),
    spec: {
      selector: { matchLabels: p.selector },
      revisionHistoryLimit: 5,
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: {
          maxUnavailable: k8s.IntOrString.fromNumber(0),
          maxSurge: k8s.IntOrString.fromString('25%'),
        },
      },
      template: {
        metadata: { labels: labelsOf(app, tier, component) },
        spec: {
          serviceAccountName: p.name,
          automountServiceAccountToken: false,
          securityContext: restrictedPodSecurityContext(),
          enableServiceLinks: false,
          ...(p.terminationGracePeriodSeconds !== undefined
            ? { terminationGracePeriodSeconds: p.terminationGracePeriodSeconds }
            : {}),
          ...(spread ? { topologySpreadConstraints: spread } : {}),
          containers: [
            {
              ...p.container,
              securityContext: restrictedContainerSecurityContext(),
              // /tmp (up to 256Mi, in the container's ephemeral-storage request) and logs.
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                ...(wiring.volumeMounts as never[]),
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: { sizeLimit: quantity('256Mi') } },
            ...(wiring.volumes as never[]),
          ],
        },
      },
    },
  });
}

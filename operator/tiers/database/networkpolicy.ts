// Egress: the cluster's DNS, the other database pods (replication, Patroni's REST API) and
// the API server (Patroni's leader lock and member keys live there).
// Postgres is reachable only from the app's own pods (the chapter's "private IPs");
// Patroni's REST API from the other database pods of the app; postgres_exporter's port only
// from the monitoring namespaces (shared/egress.ts), and with monitoring on Patroni's port
// too, for its /metrics (leader, sync standby, lag): its GET endpoints show topology, never
// data or passwords, and every method that changes anything needs the REST API password.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { dataTierEgress, scrapeIngress } from '../shared/egress.ts';
import { APP_LABEL, metadataOf, selectorOf } from '../shared/meta.ts';
import { backupEgressPort } from './backup.ts';
import { EXPORTER_PORT, PATRONI_PORT, POSTGRES_PORT, tierName } from './names.ts';

const tcp = (port: number) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' });

export function databaseNetworkPolicy(chart: Chart, app: AppModel): void {
  const dbPods = selectorOf(app, 'database', 'postgres');
  const backupPort = backupEgressPort(app);
  new k8s.KubeNetworkPolicy(chart, 'db-netpol', {
    metadata: metadataOf(app, 'database', tierName(app), 'postgres'),
    spec: {
      podSelector: { matchLabels: dbPods },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { [APP_LABEL]: app.name } } }],
          ports: [tcp(POSTGRES_PORT)],
        },
        { from: [{ podSelector: { matchLabels: dbPods } }], ports: [tcp(PATRONI_PORT)] },
        scrapeIngress(app, [EXPORTER_PORT, ...(app.monitoring ? [PATRONI_PORT] : [])]),
      ],
      egress: [
        ...dataTierEgress(app, {
          peers: dbPods,
          peerPorts: [POSTGRES_PORT, PATRONI_PORT],
          apiServer: true,
        }),
        // The backup store: a host name, which a NetworkPolicy cannot name, so by port.
        ...(backupPort === undefined ? [] : [{ ports: [tcp(backupPort)] }]),
      ],
    },
  });
}

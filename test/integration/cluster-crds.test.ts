// The upstream CRDs the operator renders against: installed unless optional CRDs are off.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { binPath, optionalCrdsWanted } from '../../devcluster/index.ts';
import { testKubeconfig } from '../../devcluster/testing.ts';

const exec = promisify(execFile);

const UPSTREAM = [
  'scaledobjects.keda.sh',
  'triggerauthentications.keda.sh',
  'servicemonitors.monitoring.coreos.com',
  'podmonitors.monitoring.coreos.com',
  'prometheusrules.monitoring.coreos.com',
  'gateways.gateway.networking.k8s.io',
  'httproutes.gateway.networking.k8s.io',
  'middlewares.traefik.io',
  'ingressroutes.traefik.io',
];

it(`upstream CRDs are ${optionalCrdsWanted([]) ? 'Established' : 'absent'}`, async () => {
  // Names and conditions only: the full CRDs are megabytes.
  const { stdout } = await exec(binPath('kubectl'), [
    `--kubeconfig=${testKubeconfig()}`,
    'get',
    'crd',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
  ]);
  const established = stdout
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([, status]) => status === 'True')
    .map(([name]) => name);
  if (optionalCrdsWanted([])) expect(established).toEqual(expect.arrayContaining(UPSTREAM));
  else for (const name of UPSTREAM) expect(established).not.toContain(name);
});

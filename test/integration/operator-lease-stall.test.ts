// The leader's API connection stalls (a proxy that holds every byte, as in a partition where
// packets are delayed): it cannot renew within the renew deadline (10 s here, every request
// under a hard deadline), so it cancels its in-flight work and exits non-zero before its lease
// (15 s) can expire; the other replica takes over. Then the partition heals and what the
// stalled leader sent into it reaches the API server late, after the takeover: the API
// server's audit log (it ran as a ServiceAccount of its own, so its requests are told apart)
// must show that none of it took effect, and that it did arrive (the control: a late write
// would have been seen).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../devcluster/cluster.ts';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { LEASE_KIND } from '../../operator/reconcile/kinds.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  applyAs,
  closeSuite,
  getApp,
  getObj,
  kubeconfig,
  openSuite,
  rbacKubeconfig,
  scalableApp,
  startOperator,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';
import { parseAuditLog } from './rbac-audit.ts';
import type { AuditEvent } from './rbac-audit.ts';
import { startStallProxy } from './stall-proxy.ts';
import type { StallProxy } from './stall-proxy.ts';

const ns = uniqueName('op-stall');
const lease = uniqueName('lease-stall');
const idA = uniqueName('scalable-operator-a');
const idB = uniqueName('scalable-operator-b');
let client: KubeClient;
let proxy: StallProxy;
let a: OperatorProcess;
let b: OperatorProcess;

// client-go's timings, shorter than the operator's defaults: the mechanism, in less time.
const TIMING = {
  SCALABLE_LEASE_DURATION_SECONDS: '15',
  SCALABLE_LEASE_RENEW_DEADLINE_SECONDS: '10',
  SCALABLE_LEASE_RETRY_SECONDS: '2',
};

const MUTATING = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** The same kubeconfig, through the proxy. */
function viaProxy(path: string, port: number): string {
  const doc = yaml.load(readFileSync(path, 'utf8')) as Json;
  const cluster = ((doc['clusters'] as Json[])[0] as Json)['cluster'] as Json;
  cluster['server'] = `https://127.0.0.1:${port}`;
  const out = `${path}.proxied`;
  writeFileSync(out, yaml.dump(doc), { mode: 0o600 });
  return out;
}

const observedGeneration = async (name: string): Promise<unknown> =>
  ((await getApp(client, ns, name))?.['status'] as Json | undefined)?.['observedGeneration'];

beforeAll(async () => {
  client = await openSuite(ns);
});

afterAll(async () => {
  await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
  await proxy?.close();
  await closeSuite(client, { namespaces: [ns], identities: [idA, idB] });
});

describe('leader with a stalled API connection', () => {
  printLogDirOnFailure();

  it('exits non-zero without writing after the stall; the other replica takes over', async () => {
    const admin = yaml.load(readFileSync(kubeconfig(), 'utf8')) as Json;
    const server = new URL(
      String((((admin['clusters'] as Json[])[0] as Json)['cluster'] as Json)['server']),
    );
    proxy = await startStallProxy({ host: server.hostname, port: Number(server.port) });
    // Both watch this file's namespace only: an operator watching every namespace also
    // reconciles what earlier files left behind (a CI run saw the stalled leader busy with
    // crd-api.test.ts's apps when the stall began: its writes in flight then, unconditional
    // server-side applies and status patches nobody else had touched, took effect when the
    // partition healed). The claim here is about a leader that sends nothing new after the
    // stall; what was already on the wire is the closing note's (issue 34) concern.
    const watch = { SCALABLE_WATCH_NAMESPACES: ns };
    a = await startOperator(
      { SCALABLE_LEASE_NAME: lease, ...TIMING, ...watch },
      viaProxy(await rbacKubeconfig(client, idA, lease, [ns]), proxy.port),
    );
    await eventually(
      'a leads',
      async () => ((await a.metric('scalable_leader')) === 1 ? true : undefined),
      30_000,
    );
    b = await startOperatorAs(
      client,
      idB,
      { lease, watchNamespaces: [ns] },
      { ...TIMING, ...watch },
    );
    await applyAs(client, 'test-user', scalableApp(ns, 'one', { web: { image: 'a:1' } }));
    await eventually(
      'one reconciled by a',
      async () => ((await observedGeneration('one')) === 1 ? true : undefined),
      120_000,
    );
    expect(await b.metric('scalable_reconcile_total')).toBe(0);

    const stalledAt = new Date();
    proxy.stall();
    let exitedAt: Date | undefined;
    const exited = a.exited.then((code) => {
      exitedAt = new Date();
      return code;
    });
    // Work for whoever leads: a's watches are stalled, so only b can pick this up.
    await applyAs(client, 'test-user', scalableApp(ns, 'one', { web: { image: 'a:2' } }));
    await eventually(
      'b leads',
      async () => ((await b.metric('scalable_leader')) === 1 ? true : undefined),
      60_000,
    );
    // The partition ends the moment b leads: whatever a sent into it arrives now, after the
    // takeover, and an a that were still running would be heard again.
    const healedAt = new Date();
    proxy.heal();
    expect(await exited).toBe(1);
    expect(a.logs()).toContain('lost the lease');
    await eventually(
      'one at generation 2 (b)',
      async () => ((await observedGeneration('one')) === 2 ? true : undefined),
      60_000,
    );
    const l = await getObj(client, LEASE_KIND, 'default', lease);
    expect((l?.['spec'] as Json)['holderIdentity']).toMatch(new RegExp(`_${b.pid}_`));
    expect(await b.metric('scalable_reconcile_total')).toBeGreaterThan(0);

    // The API server's record, by when each request reached it.
    const state = await readState();
    const at = (e: AuditEvent) => new Date(e.requestReceivedTimestamp ?? 0).getTime();
    const audit = () =>
      parseAuditLog(readFileSync(join(state!.logDir, 'kube-apiserver-audit.log'), 'utf8'));
    const writesOf = (events: AuditEvent[], id: string) =>
      events.filter(
        (e) => e.user.username === `system:serviceaccount:default:${id}` && MUTATING.has(e.verb),
      );
    const isLease = (e: AuditEvent) => e.objectRef?.resource === 'leases';
    const ok = (e: AuditEvent) => (e.responseStatus?.code ?? 0) < 400;
    // The control: the renewal a sent into the partition reached the server after the heal
    // (and was refused: b had written the lease since, so its resourceVersion was stale).
    const events = await eventually("a's held renewal to reach the API server", async () => {
      const all = audit();
      return writesOf(all, idA).some((e) => isLease(e) && at(e) >= healedAt.getTime())
        ? all
        : undefined;
    });
    expect(proxy.deliveredLate()).toBeGreaterThan(0);
    const aWrites = writesOf(events, idA);
    const lateOfA = aWrites.filter((e) => at(e) >= healedAt.getTime());
    // Nothing a sent into the partition took effect: every late write was refused. The lease's
    // by a stale resourceVersion (409); another held write may also find its object gone
    // since (404: once seen beside a busy run), which is refused all the same.
    const late = (e: AuditEvent) =>
      `${e.verb} ${e.objectRef?.resource ?? ''} ${e.responseStatus?.code ?? '?'}`;
    expect(lateOfA.filter(isLease).map(late)).toEqual(
      lateOfA.filter(isLease).map((e) => `${e.verb} leases 409`),
    );
    expect(lateOfA.filter((e) => !isLease(e) && ok(e)).map(late)).toEqual([]);
    // b's takeover: its first successful lease write. a's last renewal: its last successful one.
    const takeover = Math.min(
      ...writesOf(events, idB)
        .filter((e) => isLease(e) && ok(e))
        .map(at),
    );
    const lastRenewal = Math.max(...aWrites.filter((e) => isLease(e) && ok(e)).map(at));
    expect(Number.isFinite(takeover) && Number.isFinite(lastRenewal)).toBe(true);
    expect(lastRenewal).toBeLessThan(stalledAt.getTime() + 1_000);
    // Nothing a wrote took effect from b's takeover on: one writer at a time.
    expect(
      aWrites
        .filter((e) => ok(e) && at(e) >= takeover)
        .map((e) => `${e.verb} ${e.objectRef?.resource ?? ''}`),
    ).toEqual([]);
    // a was gone before anyone could take over: before its last renewal plus the lease
    // duration (15 s), which bounds b's earliest takeover, and before b's actual one.
    expect(exitedAt!.getTime()).toBeLessThan(lastRenewal + 15_000);
    expect(exitedAt!.getTime()).toBeLessThan(takeover);
  });
});

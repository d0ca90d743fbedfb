// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm (timings from
// settings.ts: lease 30 s, renew deadline 20 s, retry 2 s, longer than client-go's for a loaded
// node; see LEASE_DEFAULT_SECONDS):
// - a candidate takes the lease when it is free or when its record has not changed for a
//   whole lease duration *as observed locally* (no trust in other machines' clocks);
// - the leader renews every retry period, with one update of the record it last wrote
//   (client-go's fast path; a conflict falls back to reading the lease); when it could not renew for the renew deadline it
//   stops leading for good: the process exits and its replacement starts clean (as
//   controller-runtime does), since in-flight work of a former leader must not go on writing;
// - every request has a hard deadline (AbortController): a renewal never outlives the renew
//   deadline, so the leader gives up before anyone may take over (renew deadline < lease);
// - time is measured on the monotonic clock (performance.now): a wall-clock step (NTP) can
//   neither extend a lease nor expire one early;
// - its own connections (KubeClient.dedicated): reconcile traffic cannot delay a renewal;
// - optimistic concurrency (resourceVersion) makes two candidates never both win;
// - release on shutdown hands over at once;
// - a slow attempt (> 1 s) or an event-loop stall before it (> 1 s) is logged as a warning,
//   so a lost lease can be told apart: a slow API server or a starved process.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LEASE_KIND, pathOf } from '../reconcile/kinds.ts';
import type { KubeClient } from './kube-client.ts';
import { isConflict, isNotFound } from './kube-client.ts';
import type { Logger } from './log.ts';

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly onStartedLeading: () => void;
  /** lost: the lease could not be renewed in time (else: released on shutdown). */
  readonly onStoppedLeading: (lost: boolean) => void;
  readonly log: Logger;
}

export { LEASE_DEFAULTS } from './settings.ts';

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  metadata: { resourceVersion?: string; name: string; namespace: string };
  spec?: LeaseSpec;
}

/** RFC 3339 with microseconds, the MicroTime format. */
export const microTime = (d: Date): string => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private running = false;
  private leading = false;
  private observedRecord = '';
  private observedAt = 0;
  private lastRenew = 0;
  private loop: Promise<void> | undefined;
  private lease: Lease | undefined;
  private readonly client: KubeClient;
  /** Ends the attempt in flight on stop(). */
  private readonly stopping = new AbortController();
  /** The longest event-loop stall between attempts: tells a starved process from a slow server. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor(
    client: KubeClient,
    private readonly opts: LeaderOptions,
  ) {
    this.client = client.dedicated();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDelay.enable();
    this.loop = this.run();
  }

  /** Stop competing; a leader releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort(new Error('stopping'));
    await this.loop;
    this.loopDelay.disable();
    if (this.leading) {
      this.leading = false;
      await this.release().catch((err: unknown) =>
        this.opts.log.warn({ err: String(err) }, 'could not release the lease'),
      );
      this.opts.onStoppedLeading(false);
    }
    this.client.close();
  }

  /** How long the attempt starting now may take: a leader's ends at its renew deadline. */
  private attemptDeadlineMs(now: number): number {
    const { renewDeadlineMs, retryPeriodMs } = this.opts;
    if (!this.leading) return Math.max(retryPeriodMs, 1_000);
    // Whole milliseconds: AbortSignal.timeout takes an integer.
    return Math.max(1, Math.floor(this.lastRenew + renewDeadlineMs - now));
  }

  private path(name?: string): string {
    return pathOf(LEASE_KIND, this.opts.namespace, name);
  }

  private async run(): Promise<void> {
    const { log, retryPeriodMs, renewDeadlineMs } = this.opts;
    while (this.running) {
      let ok = false;
      const started = performance.now();
      const deadline = AbortSignal.any([
        AbortSignal.timeout(this.attemptDeadlineMs(started)),
        this.stopping.signal,
      ]);
      try {
        ok = await this.tryAcquireOrRenew(started, deadline);
      } catch (err) {
        log.debug({ err: String(err) }, 'lease request failed');
      }
      if (!this.running) break;
      const now = performance.now();
      this.reportSlow(ok, now - started);
      if (ok) {
        // Renewed as of when the attempt started: the others observed the record no earlier.
        this.lastRenew = started;
        if (!this.leading) {
          this.leading = true;
          log.info({ identity: this.opts.identity, lease: this.opts.name }, 'became leader');
          this.opts.onStartedLeading();
        }
      } else if (this.leading && now - this.lastRenew >= renewDeadlineMs) {
        this.leading = false;
        this.running = false;
        log.error(
          {
            identity: this.opts.identity,
            sinceRenewMs: Math.round(now - this.lastRenew),
            attemptMs: Math.round(now - started),
          },
          'lost the lease: could not renew it within the renew deadline',
        );
        this.opts.onStoppedLeading(true);
        break;
      }
      // Candidates spread their attempts a little, as client-go's jitter does.
      await sleep(this.leading ? retryPeriodMs : retryPeriodMs * (1 + Math.random() * 0.2));
    }
  }

  /**
   * A warning for an attempt that took over a second or came after a stall of the event loop
   * over a second: a lost lease is then explained by the log (server latency vs. starvation).
   */
  private reportSlow(ok: boolean, attemptMs: number): void {
    const stallMs = this.loopDelay.max / 1e6;
    this.loopDelay.reset();
    if (attemptMs < 1_000 && stallMs < 1_000) return;
    this.opts.log.warn(
      {
        ok,
        leading: this.leading,
        attemptMs: Math.round(attemptMs),
        eventLoopStallMs: Math.round(stallMs),
      },
      'slow lease attempt',
    );
  }

  private async tryAcquireOrRenew(started: number, signal: AbortSignal): Promise<boolean> {
    // Wall-clock time only for the record others read; every comparison is monotonic.
    const now = new Date();
    const { identity, leaseDurationMs } = this.opts;
    // A leader first updates the record it wrote last (one request, as client-go does since
    // 1.24): a renewal under a loaded server costs one round trip instead of two. A conflict
    // (someone else wrote) or any error falls back to reading the lease.
    const desired = (old: LeaseSpec | undefined): LeaseSpec => {
      const mine = old?.holderIdentity === identity;
      return {
        holderIdentity: identity,
        leaseDurationSeconds: Math.round(leaseDurationMs / 1000),
        acquireTime: mine && old?.acquireTime ? old.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (old?.leaseTransitions ?? 0) + (mine || !old?.holderIdentity ? 0 : 1),
      };
    };
    /** Writes `spec` over `lease` (its resourceVersion the precondition) and observes it. */
    const update = async (lease: Lease, spec: LeaseSpec): Promise<void> => {
      this.lease = await this.client.request<Lease>('PUT', this.path(this.opts.name), {
        verb: 'update',
        resource: 'leases',
        timeoutMs: 5_000,
        signal,
        body: { ...lease, spec },
      });
      this.observe(this.lease.spec, started);
    };
    const held = this.lease;
    if (this.leading && held?.spec?.holderIdentity === identity) {
      try {
        await update(held, desired(held.spec));
        return true;
      } catch (err) {
        if (signal.aborted) throw err;
        this.opts.log.debug({ err: String(err) }, 'optimistic renewal failed; reading the lease');
      }
    }
    let lease: Lease;
    try {
      lease = await this.client.request<Lease>('GET', this.path(this.opts.name), {
        verb: 'get',
        resource: 'leases',
        timeoutMs: 5_000,
        signal,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        this.lease = await this.client.request<Lease>('POST', this.path(), {
          verb: 'create',
          resource: 'leases',
          timeoutMs: 5_000,
          signal,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec: desired(undefined),
          },
        });
        this.observe(this.lease.spec, started);
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    this.observe(spec, started);
    const heldByOther = !!spec.holderIdentity && spec.holderIdentity !== identity;
    const ttl = (spec.leaseDurationSeconds ?? leaseDurationMs / 1000) * 1000;
    if (heldByOther && this.observedAt + ttl > performance.now()) return false;
    try {
      await update(lease, desired(spec));
      if (heldByOther)
        this.opts.log.info({ previous: spec.holderIdentity }, 'took over an expired lease');
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** at: performance.now() when the record was read. */
  private observe(spec: LeaseSpec | undefined, at: number): void {
    const record = JSON.stringify(spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = at;
    }
  }

  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const current = await this.client.request<Lease>('GET', this.path(this.opts.name), {
      verb: 'get',
      resource: 'leases',
      timeoutMs: 5_000,
    });
    if (current.spec?.holderIdentity !== this.opts.identity) return;
    const now = microTime(new Date());
    await this.client.request('PUT', this.path(this.opts.name), {
      verb: 'update',
      resource: 'leases',
      timeoutMs: 5_000,
      body: {
        ...current,
        spec: {
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: current.spec?.leaseTransitions ?? 0,
        },
      },
    });
    this.opts.log.info('released the lease');
  }
}

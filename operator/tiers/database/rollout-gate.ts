// One app's database rolls at a time, per operator. An operator upgrade that changes the
// database pod template (a new Postgres image, a new init container) changes every app's
// at once; rolling them all together would put a switchover in every shard of every app in
// the same minute. The app that acts holds the gate; another waits (its DatabaseReady says
// RollingUpdate) and goes on at a later reconcile (a pod event or the periodic resync) once
// the holder is done, or once the holder has not acted for HOLD_MS (a rollout stuck on a
// member that never gets ready must not stop every other app's).
// State in a tier module, on purpose: it spans apps, and only the leader reconciles.
export const HOLD_MS = 10 * 60_000;

export class RolloutGate {
  private holder: { readonly app: string; readonly until: number } | undefined;

  /** Whether `app` may act now; acting takes (or renews) the gate. */
  tryEnter(app: string, now = Date.now()): boolean {
    const h = this.holder;
    if (h && h.app !== app && now <= h.until) return false;
    this.holder = { app, until: now + HOLD_MS };
    return true;
  }

  /** `app` has nothing left to roll. */
  leave(app: string): void {
    if (this.holder?.app === app) this.holder = undefined;
  }

  /** The app holding the gate, if any (for messages). */
  heldBy(now = Date.now()): string | undefined {
    return this.holder && now <= this.holder.until ? this.holder.app : undefined;
  }
}

/** The operator's one gate. */
export const rolloutGate = new RolloutGate();

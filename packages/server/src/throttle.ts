/**
 * Per-job coalescing of the chatty execution events (issue 16 burst, issue 11 Redis traffic).
 *
 * A sampler reports `progress` and a `preview` every step; fanned out to 100 websocket listeners or
 * published through Redis, that is most of a job's traffic. An `EventThrottle` sits on one job's event
 * stream and passes on at most one `progress` and one `preview` per `intervalMs` (leading edge: the
 * first goes at once; later ones within the interval replace each other, and the latest goes when the
 * interval is up). Every other event is a state change (execution_start, node_start → `executing`,
 * node_output → `executed`, success / error / interrupted, ...): it is never dropped nor delayed, and
 * whatever progress or preview is held is passed on first, so the order on the wire stays the engine's
 * and the LAST progress value of a node always arrives. `intervalMs <= 0` passes everything through.
 */
import type { ExecutionEvent } from '@priorgraph/core';

/** Default: at most 10 progress and 10 preview events a second per job. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 100;

type Coalesced = Extract<ExecutionEvent, { type: 'progress' | 'preview' }>;

function coalesced(e: ExecutionEvent): e is Coalesced {
  return e.type === 'progress' || e.type === 'preview';
}

/** The interval from an option, else `PRIORGRAPH_PROGRESS_INTERVAL_MS`, else the default. */
export function progressInterval(option: number | undefined): number {
  if (option !== undefined) return option;
  const env = process.env.PRIORGRAPH_PROGRESS_INTERVAL_MS;
  if (env !== undefined && env !== '' && Number.isFinite(Number(env))) return Number(env);
  return DEFAULT_PROGRESS_INTERVAL_MS;
}

export class EventThrottle {
  /** Held progress / preview, in the order they were first held. */
  private readonly held = new Map<'progress' | 'preview', Coalesced>();
  private readonly lastSent = { progress: Number.NEGATIVE_INFINITY, preview: Number.NEGATIVE_INFINITY };
  private timer: NodeJS.Timeout | undefined;
  /** Events passed on / coalesced away (for benchmarks and tests). */
  passed = 0;
  dropped = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly sink: (e: ExecutionEvent) => void,
  ) {}

  push(e: ExecutionEvent): void {
    if (this.intervalMs <= 0) {
      this.send(e);
      return;
    }
    if (!coalesced(e)) {
      this.flush();
      this.send(e);
      return;
    }
    const prev = this.held.get(e.type);
    // A different node's progress: the held one is that node's last value, it goes first.
    if (prev && prev.nodeId !== e.nodeId) this.flush();
    const now = performance.now();
    if (!this.held.has(e.type) && now - this.lastSent[e.type] >= this.intervalMs) {
      this.lastSent[e.type] = now;
      this.send(e);
      return;
    }
    if (this.held.has(e.type)) this.dropped++;
    this.held.set(e.type, e);
    this.schedule(now);
  }

  /** Pass on what is held now (before a state change, and when the job ends). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = performance.now();
    for (const [type, e] of [...this.held]) {
      this.held.delete(type);
      this.lastSent[type] = now;
      this.send(e);
    }
  }

  /** The interval is up for at least one held kind: send those, wait for the rest. */
  private tick(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [type, e] of [...this.held]) {
      if (now - this.lastSent[type] < this.intervalMs) continue;
      this.held.delete(type);
      this.lastSent[type] = now;
      this.send(e);
    }
    this.schedule(now);
  }

  /** One timer, due when the first held kind's interval is up. */
  private schedule(now: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.held.size === 0) return;
    let due = Number.POSITIVE_INFINITY;
    for (const type of this.held.keys()) due = Math.min(due, this.lastSent[type] + this.intervalMs - now);
    this.timer = setTimeout(() => this.tick(), Math.max(0, due));
  }

  private send(e: ExecutionEvent): void {
    this.passed++;
    this.sink(e);
  }
}

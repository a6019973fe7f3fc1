/**
 * Sharing the event loop's turns between queued prompts and the cheap requests that wait behind them.
 *
 * A burst's first wave brings many `POST /prompt`s at once (every client starts together): Node runs
 * the handlers of all the requests that are ready in one turn of the event loop, back to back, and a
 * `GET /queue` that arrives meanwhile waits for all of them (issue 16, bench/burst.bench.ts --stalls: the
 * first burst's slowest answers came at its start, with the server's loop busy for 50–85 ms).
 *
 * `TurnShare.enter()` lets a prompt be normalized, validated and queued at once while this turn has
 * spent less than `budgetMs` since its first prompt, and queues the rest in arrival order, releasing
 * ONE per later turn (a `setImmediate` each): the loop polls the sockets between them, so what arrived
 * meanwhile is answered between two prompts. Outside a burst nothing waits.
 */
export class TurnShare {
  /** when this turn's first prompt started (−1: none yet this turn; −∞: a released one owns it) */
  private turnStart = -1;
  private readonly waiting: Array<() => void> = [];
  private releasing = false;
  /** prompts that waited for a later turn (for tests and benchmarks) */
  deferred = 0;

  constructor(
    private readonly budgetMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** null: go on at once; else a promise that settles in a later turn, after the ones queued before. */
  enter(): Promise<void> | null {
    const t = this.now();
    if (this.turnStart === -1) this.startTurn(t);
    if (this.waiting.length === 0 && t - this.turnStart < this.budgetMs) return null;
    this.deferred++;
    const p = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.release();
    return p;
  }

  /** This turn's heavy work began at `t`; the next turn starts afresh. */
  private startTurn(t: number): void {
    this.turnStart = t;
    setImmediate(() => {
      this.turnStart = -1;
    });
  }

  /** One waiting prompt per turn, oldest first. */
  private release(): void {
    if (this.releasing) return;
    this.releasing = true;
    setImmediate(() => {
      this.releasing = false;
      const next = this.waiting.shift();
      if (!next) return;
      // the released prompt is this turn's share: later arrivals in this turn queue behind it
      this.startTurn(Number.NEGATIVE_INFINITY);
      next();
      if (this.waiting.length) this.release();
    });
  }
}

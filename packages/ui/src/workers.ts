/** The side panel's worker list: shown only when the server hands jobs to workers through a queue
 *  (`priorgraph serve --queue`), one row per live worker from GET /api/workers — its name and host,
 *  the job it runs (or idle), how many models it has, and how long since its last heartbeat. */
import type { Api, WorkerInfo } from './api.ts';

const POLL_MS = 3000;

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

export class WorkersPanel {
  private timer?: ReturnType<typeof setInterval>;
  /** The names shown, in order (what the end-to-end test reads). */
  shown: string[] = [];

  constructor(private readonly api: Api) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), POLL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    let workers: WorkerInfo[];
    try {
      workers = await this.api.workers();
    } catch {
      return; // the connection status already says when the server is away
    }
    const now = Date.now();
    // single-machine mode reports the server's own worker process (kind 'local'): nothing to watch
    // there; the panel is for queue workers, whatever their names
    $('workers-panel').hidden = !workers.some((w) => w.kind !== 'local');
    this.shown = workers.map((w) => w.name);
    $('workers-list').replaceChildren(
      ...workers.map((w) => {
        const li = document.createElement('li');
        li.className = w.current_job ? 'job running' : 'job';
        li.dataset.worker = w.name;
        const title = document.createElement('span');
        title.className = 'job-title';
        title.textContent = w.name;
        const age = Math.max(0, Math.round((now - Date.parse(w.last_heartbeat)) / 1000));
        const info = document.createElement('span');
        info.className = 'muted';
        info.textContent = ` · ${w.host} · ${w.current_job ? `running ${w.current_job.slice(0, 8)}` : 'idle'} · ${w.models.length} models · ${age} s ago`;
        li.title = `plugins: ${w.plugins.join(', ') || 'none'}\nmodels: ${w.models.join(', ') || 'none'}`;
        li.append(title, info);
        return li;
      }),
    );
  }
}

/** Named workflows kept on the server (ComfyUI's /userdata, folder workflows/), as ComfyUI users know
 *  them: Save (Ctrl+S) stores the graph again under the name it was saved or opened under, and asks a
 *  name the first time; "Save as…" (Ctrl+Shift+S) always asks; "Workflows" (Ctrl+O) lists those on the
 *  server, most recently saved first, under the ones this browser saved or opened last ("Recent"), to
 *  open or delete. The name is the document's meta.name, and the file is `<name>.json`. Which name the
 *  graph is kept under, and the recent names, stay in localStorage (they outlive a reload). */
import type { Api, SavedWorkflow } from './api.ts';

export interface WorkflowsHooks {
  /** The graph as a document, and its current name (if any). */
  current(): { doc: Record<string, unknown>; name?: string };
  /** The workflow now carries this name (after a save). */
  named(name: string): void;
  /** Open a stored workflow (the caller asks before it replaces a graph); false when it did not. */
  open(doc: unknown, name: string): boolean;
  toast(text: string, error?: boolean): void;
}

const ON_SERVER_KEY = 'priorgraph.on-server';
const RECENT_KEY = 'priorgraph.recent-workflows';
const RECENT_MAX = 8;

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** A name a person typed, as a file name: no folders, no leading dot, no `.json` twice. */
export function workflowFileName(name: string): string {
  const base = name
    .trim()
    .replace(/\.priorgraph\.json$|\.json$/i, '')
    .replace(/[\\/:*?"<>|]+/g, '_')
    .replace(/\s+/g, ' ')
    .replace(/^\.+/, '_')
    .slice(0, 120);
  return base ? `${base}.json` : '';
}

export class WorkflowsDialog {
  /** Names listed the last time the dialog opened (for people and the end-to-end test). */
  listed: string[] = [];

  constructor(
    private readonly api: Api,
    private readonly hooks: WorkflowsHooks,
  ) {
    $('workflows-close').addEventListener('click', () => this.close());
    $('workflows').addEventListener('click', (e) => {
      if (e.target === $('workflows')) this.close();
    });
  }

  /** The name the graph is kept under on the server (saved or opened as), if it is. */
  get onServer(): string | undefined {
    return localStorage.getItem(ON_SERVER_KEY) ?? undefined;
  }

  private set onServer(name: string | undefined) {
    if (name === undefined) localStorage.removeItem(ON_SERVER_KEY);
    else localStorage.setItem(ON_SERVER_KEY, name);
  }

  /** Another graph replaced this one (New, Example, a file, the history): Save asks a name again. */
  forget(): void {
    this.onServer = undefined;
  }

  /** The names saved or opened last in this browser, most recent first. */
  recent(): string[] {
    try {
      const r = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
      return Array.isArray(r) ? r.filter((n): n is string => typeof n === 'string') : [];
    } catch {
      return [];
    }
  }

  private remember(name: string): void {
    this.onServer = name;
    const r = [name, ...this.recent().filter((n) => n !== name)].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(r));
  }

  private drop(name: string): void {
    if (this.onServer === name) this.forget();
    localStorage.setItem(RECENT_KEY, JSON.stringify(this.recent().filter((n) => n !== name)));
  }

  /** Save (Ctrl+S): again under the name the graph is kept under, replacing it; the first time ask. */
  async save(): Promise<boolean> {
    const name = this.onServer;
    if (name === undefined) return this.saveAs();
    return this.store(name, true);
  }

  /** Ask a name and store the graph under it (asking again before replacing another one). */
  async saveAs(): Promise<boolean> {
    const { name } = this.hooks.current();
    const asked = window.prompt('Save the workflow on the server as', this.onServer ?? name ?? 'workflow');
    if (asked === null) return false;
    const file = workflowFileName(asked);
    if (!file) {
      this.hooks.toast('A workflow needs a name', true);
      return false;
    }
    return this.store(file.slice(0, -'.json'.length), false);
  }

  /** Store the graph as `<name>.json`; without `replace`, ask before replacing one of that name. */
  private async store(name: string, replace: boolean): Promise<boolean> {
    const file = `${name}.json`;
    const { doc } = this.hooks.current();
    const stored = { ...doc, meta: { ...((doc.meta as object) ?? {}), name } };
    try {
      if (!(await this.api.saveWorkflow(file, stored, replace))) {
        if (!window.confirm(`A workflow named "${name}" is already saved. Replace it?`)) return false;
        await this.api.saveWorkflow(file, stored, true);
      }
    } catch (err) {
      this.hooks.toast(`Could not save "${name}": ${(err as Error).message}`, true);
      return false;
    }
    this.remember(name);
    this.hooks.named(name);
    this.hooks.toast(`Saved "${name}" on the server`);
    return true;
  }

  /** The dialog: "Recent" (saved or opened in this browser, still on the server) above every saved
   *  workflow, most recently saved first. */
  async show(): Promise<void> {
    let files: SavedWorkflow[];
    try {
      files = await this.api.listWorkflows();
    } catch (err) {
      this.hooks.toast(`Could not list the saved workflows: ${(err as Error).message}`, true);
      return;
    }
    const byName = new Map(files.map((f) => [f.path.slice(0, -'.json'.length), f]));
    this.listed = [...byName.keys()];
    const recent = this.recent().filter((n) => byName.has(n));
    $('workflows-recent').replaceChildren(...recent.map((n) => this.row(byName.get(n)!, false)));
    $('workflows-recent-section').hidden = recent.length === 0;
    $('workflows-list').replaceChildren(...files.map((f) => this.row(f, true)));
    $('workflows-empty').hidden = files.length > 0;
    $('workflows').hidden = false;
  }

  private row(f: SavedWorkflow, deletable: boolean): HTMLLIElement {
    const name = f.path.slice(0, -'.json'.length);
    const li = document.createElement('li');
    li.className = name === this.onServer ? 'job running' : 'job';
    li.dataset.name = name;
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'wf-open';
    open.textContent = name;
    open.title = `Open "${name}"`;
    open.addEventListener('click', () => void this.open(f.path, name));
    const when = document.createElement('span');
    when.className = 'muted';
    when.textContent = ` ${new Date(f.modified).toLocaleString()}`;
    li.append(open, when);
    if (deletable) {
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'wf-delete';
      del.textContent = 'Delete';
      del.addEventListener('click', () => void this.remove(f.path, name));
      li.append(del);
    }
    return li;
  }

  close(): void {
    $('workflows').hidden = true;
  }

  /** Open a saved workflow by its name (the Workflows list, or a script). */
  async open(path: string, name: string): Promise<boolean> {
    let doc: unknown;
    try {
      doc = await this.api.loadWorkflow(path);
    } catch (err) {
      this.hooks.toast(`Could not open "${name}": ${(err as Error).message}`, true);
      return false;
    }
    this.close();
    if (!this.hooks.open(doc, name)) return false;
    this.remember(name);
    return true;
  }

  private async remove(path: string, name: string): Promise<void> {
    if (!window.confirm(`Delete the saved workflow "${name}"?`)) return;
    try {
      await this.api.deleteWorkflow(path);
    } catch (err) {
      this.hooks.toast(`Could not delete "${name}": ${(err as Error).message}`, true);
      return;
    }
    this.drop(name);
    await this.show();
  }
}

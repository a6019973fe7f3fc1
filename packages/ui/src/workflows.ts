/** Named workflows kept on the server (ComfyUI's /userdata, folder workflows/): "Save as…" asks a
 *  name and stores the graph there; "Workflows" lists them, most recently saved first, to open or
 *  delete. The name is the document's meta.name, and the file is `<name>.json`. */
import type { Api, SavedWorkflow } from './api.ts';

export interface WorkflowsHooks {
  /** The graph as a document, and its current name (if any). */
  current(): { doc: Record<string, unknown>; name?: string };
  /** The workflow now carries this name (after a save). */
  named(name: string): void;
  /** Open a stored workflow (the caller asks before it replaces a graph). */
  open(doc: unknown, name: string): void;
  toast(text: string, error?: boolean): void;
}

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

  /** Ask a name and store the graph under it (asking again before replacing another one). */
  async saveAs(): Promise<boolean> {
    const { doc, name } = this.hooks.current();
    const asked = window.prompt('Save the workflow on the server as', name ?? 'workflow');
    if (asked === null) return false;
    const file = workflowFileName(asked);
    if (!file) {
      this.hooks.toast('A workflow needs a name', true);
      return false;
    }
    const newName = file.slice(0, -'.json'.length);
    const stored = { ...doc, meta: { ...((doc.meta as object) ?? {}), name: newName } };
    try {
      if (!(await this.api.saveWorkflow(file, stored, false))) {
        if (!window.confirm(`A workflow named "${newName}" is already saved. Replace it?`)) return false;
        await this.api.saveWorkflow(file, stored, true);
      }
    } catch (err) {
      this.hooks.toast(`Could not save "${newName}": ${(err as Error).message}`, true);
      return false;
    }
    this.hooks.named(newName);
    this.hooks.toast(`Saved "${newName}" on the server`);
    return true;
  }

  async show(): Promise<void> {
    let files: SavedWorkflow[];
    try {
      files = await this.api.listWorkflows();
    } catch (err) {
      this.hooks.toast(`Could not list the saved workflows: ${(err as Error).message}`, true);
      return;
    }
    this.listed = files.map((f) => f.path.slice(0, -'.json'.length));
    const ul = $('workflows-list');
    ul.replaceChildren();
    for (const f of files) {
      const name = f.path.slice(0, -'.json'.length);
      const li = document.createElement('li');
      li.className = 'job';
      li.dataset.name = name;
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'wf-open';
      open.textContent = name;
      open.title = `Open "${name}"`;
      open.addEventListener('click', () => void this.open(f.path, name));
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'wf-delete';
      del.textContent = 'Delete';
      del.addEventListener('click', () => void this.remove(f.path, name));
      const when = document.createElement('span');
      when.className = 'muted';
      when.textContent = ` ${new Date(f.modified).toLocaleString()}`;
      li.append(open, when, del);
      ul.append(li);
    }
    $('workflows-empty').hidden = files.length > 0;
    $('workflows').hidden = false;
  }

  close(): void {
    $('workflows').hidden = true;
  }

  private async open(path: string, name: string): Promise<void> {
    let doc: unknown;
    try {
      doc = await this.api.loadWorkflow(path);
    } catch (err) {
      this.hooks.toast(`Could not open "${name}": ${(err as Error).message}`, true);
      return;
    }
    this.close();
    this.hooks.open(doc, name);
  }

  private async remove(path: string, name: string): Promise<void> {
    if (!window.confirm(`Delete the saved workflow "${name}"?`)) return;
    try {
      await this.api.deleteWorkflow(path);
    } catch (err) {
      this.hooks.toast(`Could not delete "${name}": ${(err as Error).message}`, true);
      return;
    }
    await this.show();
  }
}

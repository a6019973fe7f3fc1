/** The editor application: toolbar, side panel, running, workflows, undo. Talks to the canvas only
 *  through GraphEditor (src/graph/adapter.ts). */
import {
  Api,
  AuthError,
  type ImageRef,
  type NodeError,
  type PreviewFrame,
  useToken,
  viewUrl,
  type WsEvent,
} from './api.ts';
import { comfyPromptToDocument, isComfyPrompt } from './comfy.ts';
import { documentToGraph, graphToDocument, type SerialisedGraph } from './document.ts';
import { GraphEditor } from './graph/adapter.ts';
import { JobsPanel } from './jobs.ts';
import { isVideoFile } from './media.ts';
import { type NodeDefs, parseObjectInfo } from './nodedefs.ts';
import { workflowFromOutput } from './png.ts';
import { isWorkflowDocument, type WorkflowDocument } from './types.ts';
import { WorkersPanel } from './workers.ts';
import { WorkflowsDialog } from './workflows.ts';

const STORAGE_KEY = 'priorgraph.workflow';
const PANEL_KEY = 'priorgraph.panel';
/** Below this window width the side panel starts closed, so the example fits the canvas readably. */
const PANEL_OPEN_MIN_WIDTH = 1600;
const UNDO_LIMIT = 100;

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el as T;
}

/** The graph without the viewport and what litegraph recomputes by itself (each node's execution
 *  order, the revision counter): what undo compares. Two graphs a person cannot tell apart have the
 *  same key, so a restored state is never taken for a new edit. */
function contentKey(g: SerialisedGraph): string {
  const { extra, revision: _r, ...rest } = g as SerialisedGraph & { revision?: unknown };
  const { ds: _ds, ...extraRest } = extra ?? {};
  const nodes = (rest.nodes ?? []).map((n) => {
    const { order: _o, ...keep } = n as typeof n & { order?: unknown };
    return keep;
  });
  return JSON.stringify({ ...rest, nodes, extra: extraRest });
}

export class App {
  readonly api = new Api();
  editor!: GraphEditor;
  defs: NodeDefs = new Map();
  private undoStack: string[] = [];
  private redoStack: string[] = [];
  private lastKey = '';
  private checkpointTimer?: ReturnType<typeof setTimeout>;
  private restoring = false;
  private runningPrompt?: string;
  private runningNode?: string;
  private queueRemaining = 0;
  private connected = false;
  private previewUrls = new Map<string, string>();
  jobs!: JobsPanel;
  workers!: WorkersPanel;
  workflows!: WorkflowsDialog;
  private meta?: Record<string, unknown>;
  /** Console-free log of what happened, for people and the end-to-end test. */
  readonly events: string[] = [];

  async start(): Promise<void> {
    const canvasEl = $<HTMLCanvasElement>('graph-canvas');
    this.editor = new GraphEditor(canvasEl, {
      onChange: () => this.scheduleCheckpoint(),
      onUpload: (id, input) => this.chooseUpload(id, input),
      onEditText: (id, input) => this.editTextInPlace(id, input),
    });
    new ResizeObserver(() => this.editor.resize()).observe($('canvas-wrap'));
    this.bindUi();
    this.jobs = new JobsPanel(this.api, {
      loadWorkflow: (wf, label) => this.loadWorkflowFrom(wf, label),
      openImage: (img) => this.openLightbox(img),
      toast: (t, e) => this.toast(t, e),
    });
    this.workers = new WorkersPanel(this.api);
    this.workflows = new WorkflowsDialog(this.api, {
      current: () => {
        const doc = this.currentDocument();
        return { doc: doc as unknown as Record<string, unknown>, name: doc.meta?.name as string | undefined };
      },
      named: (name) => {
        this.meta = { ...this.meta, name };
        this.editor.setMeta(this.meta);
        this.checkpoint();
        this.log(`saved as ${name}`);
      },
      open: (doc, name) => this.loadWorkflowFrom(doc as Record<string, unknown>, `"${name}"`),
      toast: (t, e) => this.toast(t, e),
    });
    this.togglePanel(this.panelWanted(), { remember: false });
    this.api.onEvent = (e) => this.onWsEvent(e);
    this.api.onPreview = (f) => this.onPreview(f);
    this.api.onConnection = (c) => {
      this.connected = c;
      this.updateStatus();
    };
    this.defs = parseObjectInfo(await this.api.objectInfo());
    this.editor.registerTypes(this.defs);
    this.api.connect();
    const saved = this.readStored();
    if (saved) this.loadDocument(saved, { fit: !saved.ui?.viewport, resetUndo: true });
    else await this.openDefault();
    await Promise.all([this.jobs.refreshHistory(), this.jobs.refreshQueue()]).catch(() => {});
    this.workers.start();
    document.body.dataset.ready = 'true';
  }

  /** A full screen that says why the editor cannot work, instead of an empty canvas: the access
   *  token is missing or wrong (with a field to type it), or the server cannot be reached. */
  showStartFailure(err: Error): void {
    this.api.close();
    const auth = err instanceof AuthError;
    $('blocker-title').textContent = auth
      ? err.hadToken
        ? 'Wrong access token'
        : 'This server needs an access token'
      : 'The editor could not start';
    $('blocker-text').textContent = auth
      ? `${err.hadToken ? 'The server refused the token this page was opened with. ' : ''}` +
        'Open the address the server printed when it started (it ends in ?token=…), or type the token ' +
        '(the --token value or PRIORGRAPH_TOKEN) here.'
      : `${err.message}. Check that the server is running and reload the page.`;
    const form = $<HTMLFormElement>('token-form');
    form.hidden = !auth;
    form.onsubmit = (e) => {
      e.preventDefault();
      const t = $<HTMLInputElement>('token-input').value.trim();
      if (t) useToken(t);
    };
    $('blocker').hidden = false;
    document.body.dataset.failed = auth ? 'auth' : 'error';
    if (auth) $<HTMLInputElement>('token-input').focus();
  }

  // ------------------------------------------------------------------ documents

  currentDocument(): WorkflowDocument {
    const { value } = graphToDocument(this.editor.serialise(), this.defs);
    if (this.meta) value.meta = { ...this.meta, ...value.meta };
    return value;
  }

  loadDocument(doc: WorkflowDocument, opts: { fit?: boolean; resetUndo?: boolean } = {}): string[] {
    const { value, warnings } = documentToGraph(doc, this.defs);
    this.meta = doc.meta;
    this.restoring = true;
    this.editor.load(value);
    this.restoring = false;
    if (opts.fit ?? true) this.editor.fitToView({ readable: true });
    this.hideErrors();
    for (const w of warnings) this.toast(w, true);
    if (opts.resetUndo) {
      this.undoStack = [];
      this.redoStack = [];
      this.lastKey = '';
    }
    this.checkpoint();
    return warnings;
  }

  async openDefault(): Promise<void> {
    const doc = await this.api.defaultWorkflow();
    if (doc) this.loadDocument(doc, { fit: true, resetUndo: true });
    else this.editor.clear();
  }

  /** The Example button: asks before it replaces a graph, and can be undone (Ctrl+Z). */
  async openExample(): Promise<void> {
    if (!this.confirmReplace('Replace the current graph with the example?')) return;
    const doc = await this.api.defaultWorkflow();
    if (!doc) {
      this.toast('The server has no example workflow', true);
      return;
    }
    this.workflows.forget();
    clearTimeout(this.checkpointTimer);
    this.checkpoint();
    this.loadDocument(doc, { fit: true });
    this.log('opened the example');
  }

  /** Ask before replacing a graph that has nodes (the replacement itself can be undone). */
  private confirmReplace(question: string): boolean {
    if (this.editor.nodeIds().length === 0) return true;
    return window.confirm(`${question} (Ctrl+Z brings this one back.)`);
  }

  private readStored(): WorkflowDocument | undefined {
    try {
      const raw = localStorage.getItem(STORAGE_KEY);
      if (!raw) return undefined;
      const doc = JSON.parse(raw);
      return isWorkflowDocument(doc) ? doc : undefined;
    } catch {
      return undefined;
    }
  }

  // ------------------------------------------------------------------ uploads and lists

  /** Read the node definitions again: combos list the files and models there are now. */
  async refreshDefs(): Promise<void> {
    this.defs = parseObjectInfo(await this.api.objectInfo());
    this.editor.registerTypes(this.defs);
    this.editor.refreshComboOptions();
    this.log('definitions refreshed');
  }

  /** The upload button of a file input: pick a file, upload it, select it. */
  private chooseUpload(id: string, input: string): void {
    const picker = document.createElement('input');
    picker.type = 'file';
    picker.accept = 'image/png,image/*';
    picker.addEventListener('change', () => {
      const f = picker.files?.[0];
      if (f) void this.uploadInto(id, input, f);
    });
    picker.click();
  }

  async uploadInto(id: string, input: string, file: File): Promise<void> {
    try {
      const name = await this.api.uploadImage(file);
      await this.refreshDefs();
      this.editor.setWidgetValue(id, input, name);
      this.checkpoint();
      this.toast(`Uploaded ${name}`);
      this.log(`uploaded ${name}`);
    } catch (err) {
      this.toast(`Could not upload ${file.name}: ${(err as Error).message}`, true);
    }
  }

  /** A plain image dropped on the canvas: upload it and add a node that loads it, where it fell. */
  private async addImageNode(file: File, at?: [number, number]): Promise<void> {
    const target = [...this.defs.values()].flatMap((d) =>
      d.inputs.filter((i) => i.upload === 'image').map((i) => ({ type: d.type, input: i.name })),
    )[0];
    if (!target) throw new Error('it carries no workflow, and no node here loads images');
    const id = this.editor.addNode(target.type, at);
    if (!id) throw new Error(`could not add a ${target.type} node`);
    await this.uploadInto(id, target.input, file);
  }

  /** Open a file: a priorgraph document, a ComfyUI API prompt, or a saved output that carries either
   *  (PNG / APNG, animated WebP, MP4); an image without a workflow becomes a Load Image node (`at`: where it was dropped, canvas coordinates). */
  async openFile(file: File, at?: [number, number]): Promise<void> {
    try {
      let doc: WorkflowDocument;
      const isImage = file.type.startsWith('image/') || /\.(png|jpe?g|webp)$/i.test(file.name);
      const isVideo = file.type.startsWith('video/') || isVideoFile(file.name);
      // PNG / APNG, animated WebP and MP4 outputs carry their workflow; other images become a Load Image node
      const carrier = /^(image\/(png|webp)|video\/mp4)$/.test(file.type) || /\.(png|webp|mp4)$/i.test(file.name);
      if ((isImage || isVideo) && !carrier) {
        if (isVideo) throw new Error('this video carries no workflow');
        await this.addImageNode(file, at);
        return;
      }
      if (isImage || isVideo) {
        let r: ReturnType<typeof workflowFromOutput>;
        try {
          r = workflowFromOutput(new Uint8Array(await file.arrayBuffer()), this.defs);
        } catch (e) {
          if (!/carries no/.test((e as Error).message) || isVideo) throw e;
          await this.addImageNode(file, at);
          return;
        }
        for (const w of r.warnings) this.toast(w, true);
        doc = r.doc;
      } else {
        const parsed: unknown = JSON.parse(await file.text());
        if (isWorkflowDocument(parsed)) doc = parsed;
        else if (isComfyPrompt(parsed)) {
          const r = comfyPromptToDocument(parsed, this.defs);
          for (const w of r.warnings) this.toast(w, true);
          doc = r.doc;
        } else if (parsed && typeof parsed === 'object' && isComfyPrompt((parsed as { prompt?: unknown }).prompt)) {
          doc = comfyPromptToDocument((parsed as { prompt: never }).prompt, this.defs).doc;
        } else if (parsed && typeof parsed === 'object' && Array.isArray((parsed as { nodes?: unknown }).nodes)) {
          throw new Error(
            'this is a ComfyUI UI-format workflow; export it from ComfyUI in API format (Save (API)) and open that',
          );
        } else throw new Error('not a priorgraph document or a ComfyUI API prompt');
      }
      this.workflows.forget();
      this.loadDocument(doc, { fit: true });
      this.toast(`Opened ${file.name}`);
      this.log(`opened ${file.name}`);
    } catch (err) {
      this.toast(`Could not open ${file.name}: ${(err as Error).message}`, true);
    }
  }

  /** Download the workflow as a file named after it (`<name>.priorgraph.json`); a graph without a
   *  name asks one first, and keeps it. */
  downloadFile(): void {
    const doc = this.currentDocument();
    let name = typeof doc.meta?.name === 'string' ? doc.meta.name.trim() : '';
    if (!name) {
      const asked = window.prompt('Download the workflow as', 'workflow');
      if (asked === null) return;
      name = asked.trim().replace(/\.priorgraph\.json$|\.json$/i, '') || 'workflow';
      this.meta = { ...this.meta, name };
      doc.meta = { ...doc.meta, name };
      this.editor.setMeta(doc.meta);
      this.checkpoint();
    }
    const blob = new Blob([`${JSON.stringify(doc, null, 2)}\n`], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${name.replace(/[^\w.-]+/g, '_')}.priorgraph.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    this.log(`downloaded ${a.download}`);
  }

  // ------------------------------------------------------------------ undo / persistence

  private scheduleCheckpoint(): void {
    if (this.restoring) return;
    clearTimeout(this.checkpointTimer);
    this.checkpointTimer = setTimeout(() => this.checkpoint(), 120);
  }

  /** Record the graph for undo when it changed, and keep it in localStorage. */
  checkpoint(): void {
    const g = this.editor.serialise();
    const key = contentKey(g);
    if (key !== this.lastKey) {
      if (this.lastKey) {
        this.undoStack.push(this.lastKey);
        if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
        this.redoStack = [];
      }
      this.lastKey = key;
    }
    this.persist(g);
    this.updateUndoButtons();
  }

  private persist(g: SerialisedGraph): void {
    try {
      const doc = graphToDocument(g, this.defs).value;
      if (this.meta) doc.meta = { ...this.meta };
      localStorage.setItem(STORAGE_KEY, JSON.stringify(doc));
    } catch {
      // storage full or unavailable: the graph just does not survive a reload
    }
  }

  private restore(key: string): void {
    const g = JSON.parse(key) as SerialisedGraph;
    const cur = this.editor.serialise();
    g.extra = { ...g.extra, ds: cur.extra.ds };
    this.restoring = true;
    this.editor.load(g);
    this.restoring = false;
    const now = this.editor.serialise();
    this.lastKey = contentKey(now);
    this.persist(now);
    this.updateUndoButtons();
  }

  undo(): void {
    clearTimeout(this.checkpointTimer);
    this.checkpoint();
    const prev = this.undoStack.pop();
    if (!prev) return;
    this.redoStack.push(this.lastKey);
    this.restore(prev);
  }

  redo(): void {
    clearTimeout(this.checkpointTimer);
    this.checkpoint(); // an edit not yet recorded ends the redo chain, as any edit does
    const next = this.redoStack.pop();
    if (!next) return;
    this.undoStack.push(this.lastKey);
    this.restore(next);
  }

  private updateUndoButtons(): void {
    $<HTMLButtonElement>('btn-undo').disabled = this.undoStack.length === 0;
    $<HTMLButtonElement>('btn-redo').disabled = this.redoStack.length === 0;
  }

  // ------------------------------------------------------------------ running

  async queue(): Promise<void> {
    clearTimeout(this.checkpointTimer);
    this.checkpoint();
    const doc = this.currentDocument();
    this.editor.clearErrors();
    this.hideErrors();
    let r: Awaited<ReturnType<Api['queue']>>;
    try {
      r = await this.api.queue(doc);
    } catch (err) {
      this.toast(`Could not queue: ${(err as Error).message}`, true);
      return;
    }
    if (!r.ok) {
      this.showNodeErrors(r.nodeErrors);
      const msg = r.error?.message ?? 'the server refused the prompt';
      this.toast(`Not queued: ${msg}${r.error?.details ? ` (${r.error.details})` : ''}`, true);
      this.log(`validation failed: ${msg}`);
      return;
    }
    this.log(`queued ${r.promptId}`);
    this.editor.applySeedControls();
    this.checkpoint();
    this.toast('Queued');
  }

  private showNodeErrors(nodeErrors: Record<string, NodeError>): void {
    const items: Array<{ id: string; text: string }> = [];
    for (const [id, ne] of Object.entries(nodeErrors)) {
      const inputErrors: Record<string, string> = {};
      const nodeMsgs: string[] = [];
      for (const e of ne.errors ?? []) {
        const input = e.extra_info?.input_name;
        const text =
          e.details && e.details !== input && !e.message.includes(e.details) ? `${e.message}: ${e.details}` : e.message;
        if (input) inputErrors[input] = inputErrors[input] ? `${inputErrors[input]}; ${text}` : text;
        else nodeMsgs.push(text);
        items.push({ id, text: input ? `${input}: ${text}` : text });
      }
      this.editor.setNodeError(id, nodeMsgs.join('\n') || undefined, inputErrors);
    }
    this.showErrors(items);
  }

  private showErrors(items: Array<{ id: string; text: string }>): void {
    const ul = $('errors');
    ul.replaceChildren();
    for (const it of items) {
      const li = document.createElement('li');
      const b = document.createElement('b');
      b.textContent = `${this.editor.nodeTitle(it.id)} (#${it.id})`;
      li.append(b, document.createTextNode(it.text));
      li.dataset.node = it.id;
      ul.append(li);
    }
    $('errors-panel').hidden = items.length === 0;
    if (items.length) this.togglePanel(true, { remember: false });
  }

  private hideErrors(): void {
    $('errors-panel').hidden = true;
    $('errors').replaceChildren();
  }

  private onWsEvent(e: WsEvent): void {
    switch (e.type) {
      case 'status':
        this.queueRemaining = e.data.status?.exec_info?.queue_remaining ?? this.queueRemaining;
        // the queue changed (maybe by another client, whose run messages this page does not get)
        this.jobs.refreshSoon();
        this.jobs.historySoon();
        break;
      case 'execution_cached':
        this.editor.setCached((e.data.nodes ?? []).map(String));
        if (e.data.nodes?.length) this.log(`cached ${e.data.nodes.join(',')}`);
        break;
      case 'execution_start':
        this.jobs.refreshSoon();
        this.runningPrompt = e.data.prompt_id;
        this.editor.clearErrors();
        this.log(`started ${e.data.prompt_id}`);
        break;
      case 'executing':
        if (e.data.node == null) {
          this.runningNode = undefined;
          this.editor.setRunning(null);
          if (e.data.prompt_id === this.runningPrompt) this.runningPrompt = undefined;
        } else {
          this.runningNode = String(e.data.node);
          this.editor.setRunning(this.runningNode);
          this.log(`executing ${this.runningNode}`);
        }
        break;
      case 'progress':
        this.editor.setProgress(String(e.data.node), e.data.value, e.data.max);
        this.log(`progress ${e.data.node} ${e.data.value}/${e.data.max}`);
        break;
      case 'executed': {
        const images = e.data.output?.images ?? [];
        const id = String(e.data.node);
        if (images.length) {
          // ComfyUI marks animated outputs (animated WebP / PNG, video) with `animated: [true]`
          const animated = (e.data.output?.animated as unknown[] | undefined)?.[0] === true;
          this.editor.setImages(
            id,
            images.map((i) => ({ url: viewUrl(i), filename: i.filename })),
            animated,
          );
          this.log(`images ${id} ${images.length}`);
        }
        break;
      }
      case 'execution_success':
        this.jobs.historySoon();
        this.jobs.refreshSoon();
        this.editor.setRunning(null);
        this.log(`success ${e.data.prompt_id}`);
        break;
      case 'execution_error': {
        this.jobs.historySoon();
        this.jobs.refreshSoon();
        const id = String(e.data.node_id);
        this.editor.setRunning(null);
        this.editor.setNodeError(id, e.data.exception_message);
        this.showErrors([{ id, text: e.data.exception_message }]);
        this.toast(`${this.editor.nodeTitle(id)} failed: ${e.data.exception_message}`, true);
        this.log(`error ${id}`);
        break;
      }
      case 'execution_interrupted':
        this.jobs.historySoon();
        this.jobs.refreshSoon();
        this.editor.setRunning(null);
        this.toast('Interrupted');
        this.log('interrupted');
        break;
    }
    this.updateStatus();
  }

  private onPreview(f: PreviewFrame): void {
    const id = f.nodeId ?? this.runningNode;
    if (!id) return;
    const url = URL.createObjectURL(f.blob);
    const old = this.previewUrls.get(id);
    this.previewUrls.set(id, url);
    this.editor.setPreview(id, url);
    if (old) setTimeout(() => URL.revokeObjectURL(old), 2000);
    this.log(`preview ${id}`);
  }

  private updateStatus(): void {
    const el = $('status');
    el.classList.toggle('offline', !this.connected);
    el.classList.toggle('running', this.connected && !!this.runningPrompt);
    if (!this.connected) el.textContent = 'server offline — reconnecting…';
    else if (this.runningPrompt && (this.runningNode || this.editor.activeIds().length)) {
      // every node running now: independent branches (two samplers) run at the same time
      const ids = [...new Set([...this.editor.activeIds(), ...(this.runningNode ? [this.runningNode] : [])])];
      el.textContent = `running ${ids.map((id) => this.editor.nodeTitle(id)).join(', ')} · queue ${this.queueRemaining}`;
    } else el.textContent = this.queueRemaining ? `queue ${this.queueRemaining}` : 'idle';
  }

  // ------------------------------------------------------------------ history

  /** Open a workflow from the history (a priorgraph document or a ComfyUI API prompt); undoable. */
  loadWorkflowFrom(wf: WorkflowDocument | Record<string, unknown>, label: string): boolean {
    let doc: WorkflowDocument;
    if (isWorkflowDocument(wf)) doc = wf;
    else if (isComfyPrompt(wf)) doc = comfyPromptToDocument(wf, this.defs).doc;
    else {
      this.toast(`${label}: not a workflow this editor can open`, true);
      return false;
    }
    if (!this.confirmReplace(`Replace the current graph with the workflow of ${label}?`)) return false;
    this.workflows.forget();
    clearTimeout(this.checkpointTimer);
    this.checkpoint();
    this.loadDocument(doc, { fit: true });
    this.toast(`Loaded the workflow of ${label}`);
    this.log(`loaded ${label}`);
    return true;
  }

  private openLightbox(img: ImageRef): void {
    const url = viewUrl(img);
    const video = isVideoFile(img.filename);
    const still = $<HTMLImageElement>('lightbox-img');
    const player = $<HTMLVideoElement>('lightbox-video');
    still.hidden = video;
    player.hidden = !video;
    if (video) player.src = url;
    else {
      player.removeAttribute('src');
      still.src = url;
    }
    $('lightbox-name').textContent = img.filename;
    const a = $<HTMLAnchorElement>('lightbox-download');
    a.href = url;
    a.download = img.filename;
    $('lightbox').hidden = false;
  }

  // ------------------------------------------------------------------ UI plumbing

  toast(text: string, error = false): void {
    const el = document.createElement('div');
    el.className = error ? 'toast error' : 'toast';
    el.textContent = text;
    $('toasts').append(el);
    setTimeout(() => el.remove(), error ? 8000 : 2500);
  }

  private log(s: string): void {
    this.events.push(s);
    if (this.events.length > 500) this.events.shift();
  }

  private bindUi(): void {
    const on = (id: string, fn: () => void) => $(id).addEventListener('click', fn);
    on('btn-queue', () => void this.queue());
    on('btn-interrupt', () => void this.api.interrupt());
    on('btn-undo', () => this.undo());
    on('btn-redo', () => this.redo());
    on('btn-fit', () => this.editor.fitToView());
    on('btn-add', () => {
      const r = $('graph-canvas').getBoundingClientRect();
      this.editor.openSearch(new MouseEvent('dblclick', { clientX: r.left + r.width / 2 - 150, clientY: r.top + 120 }));
    });
    on('btn-new', () => {
      if (!this.confirmReplace('Start an empty graph?')) return;
      this.workflows.forget();
      this.meta = undefined;
      this.editor.clear();
      this.hideErrors();
      this.checkpoint();
    });
    on('btn-default', () => void this.openExample());
    on('btn-open', () => $('file-input').click());
    on('btn-save', () => void this.workflows.save());
    on('btn-download', () => this.downloadFile());
    on('workflows-file', () => {
      this.workflows.close();
      $('file-input').click();
    });
    on('btn-save-as', () => void this.workflows.saveAs());
    on('btn-workflows', () => void this.workflows.show());
    on('btn-help', () => this.toggleHelp(true));
    on('btn-panel', () => this.togglePanel());
    on('help-close', () => this.toggleHelp(false));
    on('lightbox-close', () => ($('lightbox').hidden = true));
    $('lightbox').addEventListener('click', (e) => {
      if (e.target === $('lightbox')) $('lightbox').hidden = true;
    });
    $('help').addEventListener('click', (e) => {
      if (e.target === $('help')) this.toggleHelp(false);
    });
    const input = $<HTMLInputElement>('file-input');
    input.addEventListener('change', () => {
      const f = input.files?.[0];
      if (f) void this.openFile(f);
      input.value = '';
    });
    $('errors').addEventListener('click', (e) => {
      const li = (e.target as HTMLElement).closest('li');
      if (li?.dataset.node) this.editor.centreOn(li.dataset.node);
    });

    const wrap = $('canvas-wrap');
    wrap.addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types.includes('Files')) {
        e.preventDefault();
        wrap.classList.add('drop-target');
      }
    });
    wrap.addEventListener('dragleave', () => wrap.classList.remove('drop-target'));
    wrap.addEventListener('drop', (e) => {
      wrap.classList.remove('drop-target');
      const f = e.dataTransfer?.files?.[0];
      if (!f) return;
      e.preventDefault();
      e.stopPropagation();
      void this.openFile(f, this.editor.canvasPoint(e.clientX, e.clientY));
    });

    window.addEventListener('keydown', (e) => this.onKey(e));
    this.bindTooltips();
    // double-click a title: rename the node in place (before litegraph opens its search)
    $('graph-canvas').addEventListener(
      'dblclick',
      (e) => {
        const id = this.editor.titleAt(e.clientX, e.clientY);
        const group = id ? undefined : this.editor.groupTitleAt(e.clientX, e.clientY);
        if (!id && group === undefined) return;
        e.stopImmediatePropagation();
        e.preventDefault();
        if (id) this.renameInPlace(id, e.clientX, e.clientY);
        else if (group !== undefined) this.renameGroupInPlace(group, e.clientX, e.clientY);
      },
      true,
    );
    // files and models added on the server while the page was in the background
    window.addEventListener('focus', () => void this.refreshDefs().catch(() => {}));
  }

  /** The side panel (errors, queue, history): as the person left it, else open only on wide windows. */
  private panelWanted(): boolean {
    const saved = localStorage.getItem(PANEL_KEY);
    return saved === null ? window.innerWidth >= PANEL_OPEN_MIN_WIDTH : saved === 'open';
  }

  togglePanel(show = $('side').hidden, opts: { remember?: boolean } = {}): void {
    $('side').hidden = !show;
    $('btn-panel').setAttribute('aria-pressed', String(show));
    if (opts.remember ?? true) localStorage.setItem(PANEL_KEY, show ? 'open' : 'closed');
    this.editor.resize();
  }

  /** Help text from the node definitions, shown when the pointer rests on an input or a title. */
  private bindTooltips(): void {
    const canvas = $('graph-canvas');
    const tip = $('tooltip');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hide = () => {
      clearTimeout(timer);
      tip.hidden = true;
    };
    canvas.addEventListener('pointermove', (e) => {
      hide();
      if (e.buttons) return;
      timer = setTimeout(() => {
        const text = this.editor.describeAt(e.clientX, e.clientY);
        if (!text) return;
        tip.textContent = text;
        tip.style.left = `${Math.min(e.clientX + 14, window.innerWidth - 340)}px`;
        tip.style.top = `${e.clientY + 18}px`;
        tip.hidden = false;
      }, 450);
    });
    canvas.addEventListener('pointerdown', hide);
    canvas.addEventListener('pointerleave', hide);
  }

  private renameInPlace(id: string, clientX: number, clientY: number): void {
    this.inputInPlace(this.editor.nodeTitle(id), clientX - 60, clientY - 14, (v) => {
      this.editor.setTitle(id, v.trim());
      this.log(`renamed ${id}`);
    });
  }

  /** A one-line editor at a point of the page: Enter or leaving it keeps the text, Esc drops it. */
  private inputInPlace(value: string, left: number, top: number, commit: (v: string) => void): void {
    const input = document.createElement('input');
    input.className = 'title-editor';
    input.value = value;
    input.style.left = `${left}px`;
    input.style.top = `${top}px`;
    let done = false;
    const finish = (keep: boolean) => {
      if (done) return;
      done = true;
      if (keep) commit(input.value);
      input.remove();
    };
    input.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Enter') finish(true);
      else if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
    document.body.append(input);
    input.focus();
    input.select();
  }

  /** Ctrl+G: a group around the selected nodes, its title edited in place at once. */
  groupSelected(): void {
    const index = this.editor.groupSelected();
    if (index === undefined) return;
    this.checkpoint();
    this.log('grouped');
    const at = this.editor.groupTitleScreenPos(index);
    if (!at) return;
    const r = $('graph-canvas').getBoundingClientRect();
    this.renameGroupInPlace(index, r.left + at[0], r.top + at[1]);
  }

  /** A group's title edited in place (after Ctrl+G, or a double-click on it). */
  private renameGroupInPlace(index: number, left: number, top: number): void {
    const title = this.editor.groups()[index]?.title ?? 'Group';
    this.inputInPlace(title, left, top, (v) => {
      this.editor.setGroupTitle(index, v.trim());
      this.checkpoint();
      this.log(`group titled ${v.trim()}`);
    });
  }

  /** A multiline text input (a prompt) edited on its node, as in ComfyUI: a text area over the
   *  widget; leaving it keeps the text (one undo step), Esc drops the change. */
  editTextInPlace(id: string, input: string): void {
    const box = this.editor.widgetScreenBox(id, input);
    if (!box) return;
    const r = $('graph-canvas').getBoundingClientRect();
    const ta = document.createElement('textarea');
    ta.className = 'text-editor';
    ta.dataset.node = id;
    ta.dataset.input = input;
    ta.value = String(this.editor.widgetValue(id, input) ?? '');
    ta.style.left = `${r.left + box[0]}px`;
    ta.style.top = `${r.top + box[1]}px`;
    ta.style.width = `${box[2]}px`;
    ta.style.height = `${Math.max(box[3] * 4, 90)}px`;
    let done = false;
    const finish = (keep: boolean) => {
      if (done) return;
      done = true;
      if (keep && ta.value !== this.editor.widgetValue(id, input)) {
        clearTimeout(this.checkpointTimer);
        this.checkpoint();
        this.editor.setWidgetValue(id, input, ta.value);
        this.checkpoint();
        this.log(`edited ${id}.${input}`);
      }
      ta.remove();
      canvas.removeEventListener('wheel', onWheel);
    };
    // zooming or scrolling the canvas would leave the text area off its widget: keep the text, close it
    const canvas = $('graph-canvas');
    const onWheel = () => finish(true);
    canvas.addEventListener('wheel', onWheel, { passive: true });
    ta.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Escape') finish(false);
      else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) finish(true);
    });
    ta.addEventListener('blur', () => finish(true));
    document.body.append(ta);
    ta.focus();
  }

  private toggleHelp(show: boolean): void {
    $('help').hidden = !show;
  }

  private onKey(e: KeyboardEvent): void {
    const t = e.target as HTMLElement;
    const typing = t.localName === 'input' || t.localName === 'textarea' || t.isContentEditable;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (mod && e.key === 'Enter') {
      e.preventDefault();
      void this.queue();
      return;
    }
    if (e.key === 'Escape') {
      $('help').hidden = true;
      $('lightbox').hidden = true;
      this.workflows.close();
      return;
    }
    if (typing) return;
    if (mod && key === 'z' && !e.shiftKey) {
      e.preventDefault();
      this.undo();
    } else if (mod && ((key === 'z' && e.shiftKey) || key === 'y')) {
      e.preventDefault();
      this.redo();
    } else if (mod && (key === 'b' || key === 'm')) {
      e.preventDefault();
      if (this.editor.toggleMode(key === 'b' ? 4 : 2)) this.log(key === 'b' ? 'bypass toggled' : 'mute toggled');
    } else if (mod && key === 'g') {
      e.preventDefault();
      this.groupSelected();
    } else if (mod && key === 's') {
      e.preventDefault(); // ComfyUI's Save and Save As: kept on the server (Download is in the toolbar)
      void (e.shiftKey ? this.workflows.saveAs() : this.workflows.save());
    } else if (mod && key === 'o') {
      e.preventDefault();
      void this.workflows.show();
    } else if (!mod && e.key === '.') {
      this.editor.fitToView();
    } else if (!mod && !e.altKey && key === 'r') {
      void this.refreshDefs(); // ComfyUI's R: re-read the node definitions and their lists
    } else if (!mod && !e.altKey && key === 'q') {
      this.togglePanel();
    } else if (!mod && e.key === '?') {
      this.toggleHelp($('help').hidden);
    } else if (mod && (key === 'c' || key === 'v') && t.localName !== 'canvas') {
      // litegraph handles these when its canvas has focus; do the same from elsewhere on the page
      if (key === 'c') this.editor.copy();
      else this.editor.paste();
    }
  }
}

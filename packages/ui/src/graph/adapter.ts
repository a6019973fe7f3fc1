/**
 * The only module that talks to litegraph. The rest of the editor uses this class, so the canvas
 * library can be swapped by rewriting this file. It speaks litegraph's serialised 0.4 JSON
 * (see ../document.ts for the conversion to the priorgraph document).
 */
import { LGraph, LGraphCanvas, LGraphGroup, LGraphNode, LiteGraph } from '@comfyorg/litegraph';
import type { SerialisedGraph } from '../document.ts';
import { type CanvasMedia, canvasMedia, sourceSize } from '../media.ts';
import { type InputDef, type NodeDef, type NodeDefs, searchNodeTypes, typeColour } from '../nodedefs.ts';
import type { SeedControl } from '../types.ts';

export interface NodeRunState {
  running: boolean;
  progress?: number;
  preview?: HTMLImageElement;
  /** The node's height before a step preview made room for itself (restored when the node is done). */
  heightBeforePreview?: number;
  /** the node's outputs: stills, animated images (<img> animates itself) or videos (<video>) */
  images: CanvasMedia[];
  /** the outputs animate: the canvas is redrawn while they show */
  animated?: boolean;
  error?: string;
  inputErrors: Record<string, string>;
  cached?: boolean;
}

export interface EditorHooks {
  /** Something in the graph may have changed (debounced by the caller). */
  onChange(): void;
  /** The upload button of a node's file input was pressed. */
  onUpload?(id: string, input: string): void;
  /** A multiline text widget was clicked: edit it in place (instead of litegraph's modal prompt). */
  onEditText?(id: string, input: string): void;
}

const SEED_MAX = 2 ** 53 - 1;
const IMAGE_AREA = 240;
/** The vertical gap kept between a node and the one below it when a node grows. */
const NODE_GAP = 12;
/** Below this zoom node text gets too small to read; litegraph stops drawing it a little lower. */
const MIN_FIT_SCALE = 0.6;

/** The parts of a litegraph node this module uses, typed here so that the rest of the file does not
 *  depend on how litegraph's own typings resolve. */
interface Slot {
  name: string;
  type: string;
  link?: number | null;
}
interface Widget {
  name: string;
  type: string;
  value: unknown;
  y: number;
  options: Record<string, unknown>;
  tooltip?: string;
}
interface AnyNode {
  id: number | string;
  type: string | null;
  title: string;
  pos: [number, number];
  size: [number, number];
  width: number;
  flags: { collapsed?: boolean };
  inputs: Slot[];
  outputs: Slot[];
  widgets?: Widget[];
  progress?: number;
  has_errors?: boolean;
  serialize_widgets?: boolean;
  onDrawForeground?: (ctx: CanvasRenderingContext2D) => void;
  onDrawBackground?: (ctx: CanvasRenderingContext2D) => void;
  computeSize(): [number, number];
  getInputPos(slot: number): [number, number];
  getOutputPos(slot: number): [number, number];
  addInput(name: string, type: string, extra?: Record<string, unknown>): unknown;
  addOutput(name: string, type: string): unknown;
  addWidget(type: string, name: string, value: unknown, cb: () => void, options: Record<string, unknown>): unknown;
}

function wrapText(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      const next = line ? `${line} ${word}` : word;
      if (ctx.measureText(next).width > width && line) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines.slice(0, 8);
}

export interface NodeTypeHooks {
  onChange(): void;
  upload?(node: AnyNode, input: string): void;
  editText?(node: AnyNode, input: string): void;
  drawForeground?(node: AnyNode, ctx: CanvasRenderingContext2D): void;
  drawBackground?(node: AnyNode, ctx: CanvasRenderingContext2D): void;
}

/** Register one litegraph node type per definition (no canvas needed: also used headless in tests). */
export function registerNodeTypes(defs: NodeDefs, hooks: NodeTypeHooks = { onChange() {} }): void {
  for (const def of defs.values()) {
    // Hooks are assigned, not overridden, so this compiles whether or not the litegraph typings resolve.
    const cls = class extends LGraphNode {
      constructor(title?: string) {
        super(title ?? def.displayName);
        const self = this as unknown as AnyNode;
        self.serialize_widgets = true;
        if (hooks.drawForeground) self.onDrawForeground = (ctx) => hooks.drawForeground?.(self, ctx);
        if (hooks.drawBackground) self.onDrawBackground = (ctx) => hooks.drawBackground?.(self, ctx);
        buildNode(self, def, hooks);
      }
    };
    (cls as unknown as { title: string }).title = def.displayName;
    Object.defineProperty(cls, 'name', { value: def.bareType });
    LiteGraph.registerNodeType(def.type, cls as never);
    (cls as unknown as { category: string }).category = def.category;
    (cls as unknown as { description: string }).description = def.description;
    for (const t of [
      ...def.inputs.filter((i) => i.kind === 'socket').map((i) => i.type),
      ...def.outputs.map((o) => o.type),
    ]) {
      LGraphCanvas.link_type_colors[t] = typeColour(t);
    }
  }
}

function buildNode(node: AnyNode, def: NodeDef, hooks: NodeTypeHooks): void {
  const changed = () => hooks.onChange();
  for (const input of def.inputs) {
    if (input.kind === 'socket') {
      node.addInput(input.name, input.type, input.optional ? { label: `${input.name}?` } : {});
    } else addWidget(node, input, changed);
    if (input.multiline && hooks.editText) {
      // the instance's onClick shadows the class's, which opens litegraph's modal prompt
      const w = node.widgets?.at(-1) as (Widget & { onClick?: unknown }) | undefined;
      if (w) w.onClick = () => hooks.editText?.(node, input.name);
    }
  }
  // upload buttons after every input widget: documents map widget values by position, and a trailing
  // button is never read back
  for (const input of def.inputs.filter((i) => i.upload)) {
    node.addWidget('button', `choose ${input.name} to upload`, null, () => hooks.upload?.(node, input.name), {
      serialize: false,
    });
  }
  for (const o of def.outputs) node.addOutput(o.name, o.type);
  const size = node.computeSize();
  node.size = [Math.max(size[0], 240), size[1]];
  if (def.outputNode) node.size[1] += IMAGE_AREA;
}

function addWidget(node: AnyNode, input: InputDef, changed: () => void): void {
  const opts: Record<string, unknown> = {};
  switch (input.kind) {
    case 'int':
    case 'seed': {
      const step = input.step ?? 1;
      Object.assign(opts, {
        min: input.min ?? (input.kind === 'seed' ? 0 : -SEED_MAX),
        max: input.max ?? SEED_MAX,
        step2: step,
        step: step * 10,
        precision: 0,
        round: step,
      });
      node.addWidget('number', input.name, Number(input.default ?? 0), changed, opts);
      if (input.kind === 'seed') {
        node.addWidget('combo', `${input.name} after run`, 'randomize', changed, {
          values: ['fixed', 'increment', 'decrement', 'randomize'],
        });
      }
      break;
    }
    case 'float': {
      const step = input.step ?? 0.01;
      const decimals = Math.max(0, Math.min(6, Math.ceil(-Math.log10(input.round ?? step) - 1e-9)));
      Object.assign(opts, {
        min: input.min ?? -1e9,
        max: input.max ?? 1e9,
        step2: step,
        step: step * 10,
        precision: decimals,
        round: input.round ?? step,
      });
      node.addWidget('number', input.name, Number(input.default ?? 0), changed, opts);
      break;
    }
    case 'boolean':
      node.addWidget('toggle', input.name, Boolean(input.default), changed, {});
      break;
    case 'combo':
      node.addWidget('combo', input.name, String(input.default ?? input.options?.[0] ?? ''), changed, {
        values: input.options ?? [],
      });
      break;
    default:
      node.addWidget(
        'text',
        input.name,
        String(input.default ?? ''),
        changed,
        input.multiline ? { multiline: true } : {},
      );
  }
  const w = node.widgets?.at(-1) as { tooltip?: string } | undefined;
  if (w && input.tooltip) w.tooltip = input.tooltip;
}

export class GraphEditor {
  readonly graph: LGraph;
  readonly canvas: LGraphCanvas;
  private readonly state = new Map<string, NodeRunState>();
  private defs: NodeDefs = new Map();
  private cssW = 1;
  private cssH = 1;

  constructor(
    private readonly el: HTMLCanvasElement,
    private readonly hooks: EditorHooks,
  ) {
    LiteGraph.release_link_on_empty_shows_menu = true;
    LiteGraph.search_hide_on_mouse_leave = false;
    this.graph = new LGraph();
    this.canvas = new LGraphCanvas(el, this.graph);
    this.canvas.allow_searchbox = true;
    this.canvas.background_image = '';
    this.canvas.render_canvas_border = false;
    this.canvas.show_info = false;
    // keep titles and widget text drawn when a fitted graph is zoomed out a little
    this.canvas.low_quality_zoom_threshold = 0.45;
    // litegraph's own search compares case-sensitively against type names; search names, types and
    // categories instead.
    // A link released on empty canvas opens the search filtered by the link's type.
    let filter: { inputType?: string; outputType?: string } = {};
    const canvas = this.canvas as unknown as {
      onSearchBox: (h: unknown, q: string) => string[];
      showSearchBox: (
        e: MouseEvent,
        o?: { type_filter_in?: string | false; type_filter_out?: string | false },
      ) => unknown;
    };
    canvas.onSearchBox = (_h, q) => searchNodeTypes(this.defs, q, 30, filter);
    const show = canvas.showSearchBox.bind(this.canvas);
    canvas.showSearchBox = (e, o) => {
      filter = { inputType: o?.type_filter_in || undefined, outputType: o?.type_filter_out || undefined };
      return show(e, o);
    };
    // litegraph's "Convert to Subgraph" makes a node that priorgraph documents cannot save, validate
    // or run (the node is lost): it is not offered
    const menus = this.canvas as unknown as Record<string, (...a: unknown[]) => unknown[] | null>;
    for (const m of ['getCanvasMenuOptions', 'getNodeMenuOptions']) {
      const orig = menus[m].bind(this.canvas);
      menus[m] = (...a) =>
        (orig(...a) ?? []).filter(
          (o) =>
            !(
              o &&
              typeof (o as { content?: unknown }).content === 'string' &&
              /subgraph/i.test((o as { content: string }).content)
            ),
        );
    }
    const changed = () => this.hooks.onChange();
    this.graph.onNodeAdded = changed;
    this.graph.onNodeRemoved = (node: { id: number | string }) => {
      this.dropState(String(node.id));
      changed();
    };
    this.graph.onConnectionChange = changed;
    (this.graph as unknown as { onAfterChange: () => void }).onAfterChange = changed;
    // litegraph stops the canvas's own pointerup after a drag: listen before it, on the window
    window.addEventListener('pointerup', changed, true);
    el.addEventListener('keyup', changed);
    this.resize();
  }

  /** Register one litegraph node type per definition (replacing earlier registrations). */
  registerTypes(defs: NodeDefs): void {
    this.defs = defs;
    registerNodeTypes(defs, {
      onChange: () => this.hooks.onChange(),
      upload: (n, input) => this.hooks.onUpload?.(String(n.id), input),
      editText: (n, input) => this.hooks.onEditText?.(String(n.id), input),
      drawForeground: (n, ctx) => this.drawForeground(n, ctx),
      drawBackground: (n, ctx) => this.drawBackground(n, ctx),
    });
    for (const def of defs.values()) {
      for (const t of [
        ...def.inputs.filter((i) => i.kind === 'socket').map((i) => i.type),
        ...def.outputs.map((o) => o.type),
      ]) {
        const c = typeColour(t);
        this.canvas.default_connection_color_byType[t] = c;
        this.canvas.default_connection_color_byTypeOff[t] = c;
      }
    }
  }

  // ---------------------------------------------------------------- drawing of run state

  private stateOf(node: AnyNode): NodeRunState | undefined {
    return this.state.get(String(node.id));
  }

  private imageTop(node: AnyNode): number {
    const size = node.computeSize();
    return size[1] + 4;
  }

  private drawBackground(node: AnyNode, ctx: CanvasRenderingContext2D): void {
    const s = this.stateOf(node);
    if (!s || node.flags.collapsed) return;
    // what each output shows now (an animation's current frame)
    const imgs = (s.images.length ? s.images.map((m) => m.current()) : s.preview ? [s.preview] : []).filter(
      (m): m is CanvasImageSource => m !== null && sourceSize(m)[0] > 0,
    );
    const img = imgs[0];
    if (!img) return;
    const top = this.imageTop(node);
    const [w, h] = node.size;
    const areaH = h - top - 4;
    if (areaH < 16) return;
    const [iw, ih] = sourceSize(img);
    const scale = Math.min((w - 8) / iw, areaH / ih);
    const dw = iw * scale;
    const dh = ih * scale;
    if (imgs.length === 1) {
      ctx.drawImage(img, (w - dw) / 2, top + (areaH - dh) / 2, dw, dh);
    } else {
      // A grid of thumbnails for batches.
      const n = imgs.length;
      const cols = Math.ceil(Math.sqrt(n));
      const rows = Math.ceil(n / cols);
      const cw = (w - 8) / cols;
      const ch = areaH / rows;
      const gap = 3;
      imgs.forEach((im, i) => {
        const [mw, mh] = sourceSize(im);
        const sc = Math.min((cw - gap) / mw, (ch - gap) / mh);
        const x = 4 + (i % cols) * cw + (cw - mw * sc) / 2;
        const y = top + Math.floor(i / cols) * ch + (ch - mh * sc) / 2;
        ctx.drawImage(im, x, y, mw * sc, mh * sc);
      });
    }
    if (!s.images.length && s.preview) {
      ctx.fillStyle = 'rgba(0,0,0,0.55)';
      ctx.fillRect(4, top, 64, 18);
      ctx.fillStyle = '#fff';
      ctx.font = '12px sans-serif';
      ctx.fillText('preview', 10, top + 13);
    }
  }

  private drawForeground(node: AnyNode, ctx: CanvasRenderingContext2D): void {
    const mode = (node as AnyNode & { mode?: number }).mode;
    if (mode === 2 || mode === 4) {
      // ComfyUI's look: bypassed nodes purple, muted ones greyed out
      const [w, h] = node.flags.collapsed ? [node.width, 0] : node.size;
      const th = LiteGraph.NODE_TITLE_HEIGHT;
      ctx.save();
      ctx.fillStyle = mode === 4 ? 'rgba(160, 64, 220, 0.35)' : 'rgba(20, 20, 20, 0.55)';
      ctx.fillRect(0, -th, w, h + th);
      ctx.restore();
    }
    const s = this.stateOf(node);
    if (!s) return;
    const titleH = LiteGraph.NODE_TITLE_HEIGHT;
    if (s.cached && !s.running) {
      const w = node.flags.collapsed ? node.width : node.size[0];
      ctx.save();
      ctx.font = '11px sans-serif';
      ctx.fillStyle = 'rgba(148, 163, 184, 0.9)';
      ctx.fillText('cached', w - 48, -titleH / 2 + 4);
      ctx.restore();
    }
    const [w, h] = node.flags.collapsed ? [node.width, 0] : node.size;
    ctx.save();
    if (s.running) {
      ctx.strokeStyle = '#4ade80';
      ctx.lineWidth = 3;
      ctx.strokeRect(-3, -titleH - 3, w + 6, h + titleH + 6);
    }
    const hasInputErrors = Object.keys(s.inputErrors).length > 0;
    if (s.error || hasInputErrors) {
      ctx.strokeStyle = '#ef4444';
      ctx.lineWidth = 3;
      ctx.strokeRect(-3, -titleH - 3, w + 6, h + titleH + 6);
      for (const name of Object.keys(s.inputErrors)) {
        const widget = node.widgets?.find((x) => x.name === name);
        const slot = node.inputs.findIndex((x) => x.name === name);
        ctx.lineWidth = 2;
        if (slot >= 0) {
          const p = node.getInputPos(slot);
          ctx.beginPath();
          ctx.arc(p[0] - node.pos[0], p[1] - node.pos[1], 8, 0, Math.PI * 2);
          ctx.stroke();
        } else if (widget && !node.flags.collapsed) {
          ctx.strokeRect(10, widget.y, w - 20, LiteGraph.NODE_WIDGET_HEIGHT);
        }
      }
      const messages = [
        ...(s.error ? [s.error] : []),
        ...Object.entries(s.inputErrors).map(([k, v]) =>
          v.toLowerCase().includes(k.toLowerCase()) ? v : `${k}: ${v}`,
        ),
      ];
      ctx.font = '13px sans-serif';
      const lines = messages.flatMap((m) => wrapText(ctx, m, Math.max(w, 240) - 16));
      const boxH = lines.length * 17 + 10;
      ctx.fillStyle = 'rgba(127, 29, 29, 0.95)';
      ctx.fillRect(0, h + 8, Math.max(w, 240), boxH);
      ctx.fillStyle = '#fee2e2';
      lines.forEach((l, i) => {
        ctx.fillText(l, 8, h + 8 + 18 + i * 17);
      });
    }
    ctx.restore();
  }

  // ---------------------------------------------------------------- graph contents

  load(g: SerialisedGraph): void {
    this.dropState();
    this.graph.configure(structuredClone(g) as never);
    const ds = g.extra?.ds as { offset?: [number, number]; scale?: number } | undefined;
    if (ds?.offset) {
      this.canvas.ds.offset[0] = ds.offset[0];
      this.canvas.ds.offset[1] = ds.offset[1];
      this.canvas.ds.scale = ds.scale ?? 1;
    }
    for (const node of this.nodes) {
      const def = this.defs.get(node.type ?? '');
      if (!def) continue;
      // A saved size never hides widgets (a document may come from an editor without the seed control),
      // and output nodes keep room for their images; what grows pushes the nodes below it down.
      const [minW, minH] = node.computeSize();
      const oldBottom = node.pos[1] + node.size[1];
      node.size[0] = Math.max(node.size[0], minW);
      node.size[1] = Math.max(node.size[1], minH + (def.outputNode ? IMAGE_AREA : 0));
      this.pushDown(node, oldBottom);
    }
    this.canvas.setDirty(true, true);
  }

  private overlapsX(a: AnyNode, b: AnyNode): boolean {
    return b.pos[0] < a.pos[0] + a.size[0] && b.pos[0] + b.size[0] > a.pos[0];
  }

  /** Move the nodes that sat below `node` (under `oldBottom`) down so that it does not cover them. */
  private pushDown(node: AnyNode, oldBottom: number): void {
    const bottom = node.pos[1] + node.size[1];
    if (bottom <= oldBottom) return;
    const th = LiteGraph.NODE_TITLE_HEIGHT;
    for (const o of this.nodes) {
      const top = o.pos[1] - th;
      if (o === node || !this.overlapsX(node, o) || top < oldBottom - 1 || top >= bottom + NODE_GAP) continue;
      const hisBottom = o.pos[1] + o.size[1];
      o.pos[1] += bottom + NODE_GAP - top;
      this.pushDown(o, hisBottom);
    }
  }

  /** Free canvas below a node, down to the next node under it. */
  private freeBelow(node: AnyNode): number {
    const bottom = node.pos[1] + node.size[1];
    let free = Number.POSITIVE_INFINITY;
    for (const o of this.nodes) {
      const top = o.pos[1] - LiteGraph.NODE_TITLE_HEIGHT;
      if (o !== node && this.overlapsX(node, o) && top >= bottom - 1) free = Math.min(free, top - bottom);
    }
    return free;
  }

  serialise(): SerialisedGraph {
    const g = this.graph.serialize() as unknown as SerialisedGraph;
    g.extra = {
      ...g.extra,
      ds: { offset: [this.canvas.ds.offset[0], this.canvas.ds.offset[1]], scale: this.canvas.ds.scale },
    };
    return g;
  }

  clear(): void {
    this.dropState();
    this.graph.clear();
    this.canvas.setDirty(true, true);
  }

  addNode(type: string, pos?: [number, number]): string | undefined {
    const node = LiteGraph.createNode(type);
    if (!node) return undefined;
    const p = pos ?? this.viewCentre();
    node.pos[0] = p[0];
    node.pos[1] = p[1];
    this.graph.add(node);
    this.canvas.setDirty(true, true);
    return String(node.id);
  }

  private viewCentre(): [number, number] {
    const ds = this.canvas.ds;
    return [this.cssW / 2 / ds.scale - ds.offset[0] - 120, this.cssH / 2 / ds.scale - ds.offset[1] - 60];
  }

  private get nodes(): AnyNode[] {
    return this.graph.nodes as unknown as AnyNode[];
  }

  nodeIds(): string[] {
    return this.nodes.map((n) => String(n.id));
  }

  private node(id: string): AnyNode | undefined {
    return this.nodes.find((n) => String(n.id) === id);
  }

  nodeTitle(id: string): string {
    return this.node(id)?.title ?? id;
  }

  nodeType(id: string): string | undefined {
    return this.node(id)?.type ?? undefined;
  }

  /** Screen (CSS pixel, relative to the canvas element) position of a slot, for tests and tooltips. */
  slotScreenPos(id: string, kind: 'input' | 'output', name: string): [number, number] | undefined {
    const node = this.node(id);
    if (!node) return undefined;
    const slots = kind === 'input' ? node.inputs : node.outputs;
    const i = slots.findIndex((s) => s.name === name);
    if (i < 0) return undefined;
    const p = kind === 'input' ? node.getInputPos(i) : node.getOutputPos(i);
    const ds = this.canvas.ds;
    return [(p[0] + ds.offset[0]) * ds.scale, (p[1] + ds.offset[1]) * ds.scale];
  }

  /** Screen (CSS pixel, relative to the canvas element) centre of a widget, once it has been drawn. */
  widgetScreenPos(id: string, name: string): [number, number] | undefined {
    const node = this.node(id);
    const w = node?.widgets?.find((x) => x.name === name) as (Widget & { last_y?: number }) | undefined;
    if (!node || !w) return undefined;
    const y = w.last_y ?? w.y;
    if (!y) return undefined; // not drawn yet
    const ds = this.canvas.ds;
    return [
      (node.pos[0] + node.size[0] / 2 + ds.offset[0]) * ds.scale,
      (node.pos[1] + y + LiteGraph.NODE_WIDGET_HEIGHT / 2 + ds.offset[1]) * ds.scale,
    ];
  }

  /** Screen box (CSS pixels, relative to the canvas element) of a widget, once it has been drawn:
   *  [x, y, w, h] — where an in-place editor goes. */
  widgetScreenBox(id: string, name: string): [number, number, number, number] | undefined {
    const node = this.node(id);
    const w = node?.widgets?.find((x) => x.name === name) as (Widget & { last_y?: number }) | undefined;
    if (!node || !w || node.flags.collapsed) return undefined;
    const y = w.last_y ?? w.y;
    if (!y) return undefined;
    const ds = this.canvas.ds;
    const margin = 15;
    return [
      (node.pos[0] + margin + ds.offset[0]) * ds.scale,
      (node.pos[1] + y + ds.offset[1]) * ds.scale,
      (node.size[0] - 2 * margin) * ds.scale,
      LiteGraph.NODE_WIDGET_HEIGHT * ds.scale,
    ];
  }

  /** ComfyUI's Ctrl+G: a group around the selected nodes. Returns the group's index, or undefined
   *  when nothing is selected. */
  groupSelected(title = 'Group'): number | undefined {
    const sel = this.nodes.filter((n) => this.selectedIds().includes(String(n.id)));
    if (!sel.length) return undefined;
    const group = new LGraphGroup(title);
    this.graph.add(group as never);
    (group as unknown as { resizeTo(o: unknown[], pad?: number): void }).resizeTo(sel, 10);
    this.hooks.onChange();
    this.redraw();
    return this.groups().length - 1;
  }

  /** Groups on the canvas: title and [x, y, w, h]. */
  groups(): Array<{ title: string; bounding: number[] }> {
    const gs = (this.graph as unknown as { _groups: Array<{ title: string; _bounding: ArrayLike<number> }> })._groups;
    return gs.map((g) => ({ title: g.title, bounding: [...Array.from(g._bounding)] }));
  }

  /** Retitle a group (by index); screen position of its title bar for an in-place editor. */
  setGroupTitle(index: number, title: string): void {
    const g = (this.graph as unknown as { _groups: Array<{ title: string }> })._groups[index];
    if (!g || !title) return;
    g.title = title;
    this.hooks.onChange();
    this.redraw();
  }

  /** The group whose title bar is at a point of the page (its index), when no node's title is there. */
  groupTitleAt(clientX: number, clientY: number): number | undefined {
    const [x, y] = this.canvasPoint(clientX, clientY);
    const gs = (this.graph as unknown as { _groups: Array<{ isPointInTitlebar(x: number, y: number): boolean }> })
      ._groups;
    for (let i = gs.length - 1; i >= 0; i--) if (gs[i].isPointInTitlebar(x, y)) return i;
    return undefined;
  }

  groupTitleScreenPos(index: number): [number, number] | undefined {
    const b = this.groups()[index]?.bounding;
    if (!b) return undefined;
    const ds = this.canvas.ds;
    return [(b[0] + ds.offset[0]) * ds.scale, (b[1] + ds.offset[1]) * ds.scale];
  }

  /** The help text for what is under a point of the page: an input's (widget or slot) from its
   *  definition, or the node's description over its title. */
  describeAt(clientX: number, clientY: number): string | undefined {
    const [x, y] = this.canvasPoint(clientX, clientY);
    const node = (this.graph as unknown as { getNodeOnPos(x: number, y: number): AnyNode | null }).getNodeOnPos(x, y);
    const def = node ? this.defs.get(node.type ?? '') : undefined;
    if (!node || !def) return undefined;
    const ly = y - node.pos[1];
    const help = (name: string) => {
      const input = def.inputs.find((i) => i.name === name);
      return input?.tooltip ? `${name}: ${input.tooltip}` : undefined;
    };
    if (ly < 0) return def.description || undefined;
    const slot = node.inputs.findIndex((_, i) => {
      const p = node.getInputPos(i);
      return Math.abs(x - p[0]) < 12 && Math.abs(y - p[1]) < 10;
    });
    if (slot >= 0) return help(node.inputs[slot].name);
    if (node.flags.collapsed) return undefined;
    for (const w of node.widgets ?? []) {
      const wy = (w as Widget & { last_y?: number }).last_y ?? w.y;
      if (ly >= wy && ly < wy + LiteGraph.NODE_WIDGET_HEIGHT) return help(w.name);
    }
    return undefined;
  }

  /** The workflow's meta (name, ...), kept with the graph as a loaded document's is. */
  setMeta(meta: Record<string, unknown>): void {
    const g = this.graph as unknown as { extra: Record<string, unknown> };
    g.extra = { ...(g.extra ?? {}), priorgraph_meta: structuredClone(meta) };
  }

  /** Selected nodes' ids. */
  selectedIds(): string[] {
    const sel = (this.canvas as unknown as { selected_nodes?: Record<string, AnyNode> }).selected_nodes ?? {};
    return Object.values(sel).map((n) => String(n.id));
  }

  /** ComfyUI's bypass (Ctrl+B, litegraph mode 4) and mute (Ctrl+M, mode 2): toggle on the selection
   *  (all on unless all already are). */
  toggleMode(mode: 2 | 4): boolean {
    const nodes = this.nodes.filter((n) => this.selectedIds().includes(String(n.id))) as Array<
      AnyNode & { mode: number }
    >;
    if (!nodes.length) return false;
    const on = !nodes.every((n) => n.mode === mode);
    for (const n of nodes) n.mode = on ? mode : 0;
    this.hooks.onChange();
    this.redraw();
    return true;
  }

  nodeMode(id: string): number {
    return (this.node(id) as (AnyNode & { mode?: number }) | undefined)?.mode ?? 0;
  }

  /** The node whose title bar is at a point of the page. */
  titleAt(clientX: number, clientY: number): string | undefined {
    const [x, y] = this.canvasPoint(clientX, clientY);
    const th = LiteGraph.NODE_TITLE_HEIGHT;
    const node = this.nodes
      .slice()
      .reverse()
      .find(
        (n) =>
          x >= n.pos[0] &&
          x <= n.pos[0] + (n.flags.collapsed ? n.width : n.size[0]) &&
          y >= n.pos[1] - th &&
          y < n.pos[1],
      );
    return node ? String(node.id) : undefined;
  }

  /** Rename a node (an empty title gives back its type's name). */
  setTitle(id: string, title: string): void {
    const node = this.node(id);
    if (!node) return;
    node.title = title || (this.defs.get(node.type ?? '')?.displayName ?? node.title);
    this.hooks.onChange();
    this.redraw();
  }

  /** Options a combo widget offers now. */
  comboOptions(id: string, name: string): string[] {
    const w = this.node(id)?.widgets?.find((x) => x.name === name);
    return [...((w?.options.values as string[] | undefined) ?? [])];
  }

  /** Screen box of a node including its title: [x, y, w, h]. */
  nodeScreenBox(id: string): [number, number, number, number] | undefined {
    const node = this.node(id);
    if (!node) return undefined;
    const ds = this.canvas.ds;
    const th = LiteGraph.NODE_TITLE_HEIGHT;
    return [
      (node.pos[0] + ds.offset[0]) * ds.scale,
      (node.pos[1] - th + ds.offset[1]) * ds.scale,
      node.size[0] * ds.scale,
      (node.size[1] + th) * ds.scale,
    ];
  }

  /** Input slots of a node with whether they are linked. */
  inputLinks(id: string): Record<string, boolean> {
    const node = this.node(id);
    return Object.fromEntries((node?.inputs ?? []).map((i) => [i.name, i.link != null]));
  }

  setWidgetValue(id: string, name: string, value: unknown): boolean {
    const w = this.node(id)?.widgets?.find((x) => x.name === name);
    if (!w) return false;
    w.value = value;
    this.canvas.setDirty(true, false);
    return true;
  }

  /** Give every combo on the canvas the options of the current definitions (files and models that
   *  appeared or went away on the server); a value no longer offered is kept, as a saved one is. */
  refreshComboOptions(): void {
    for (const node of this.nodes) {
      const def = this.defs.get(node.type ?? '');
      for (const input of def?.inputs ?? []) {
        if (input.kind !== 'combo') continue;
        const w = node.widgets?.find((x) => x.name === input.name);
        if (w) w.options.values = input.options ?? [];
      }
    }
    this.redraw();
  }

  /** Canvas coordinates of a point on the page. */
  canvasPoint(clientX: number, clientY: number): [number, number] {
    const r = this.el.getBoundingClientRect();
    const ds = this.canvas.ds;
    return [(clientX - r.left) / ds.scale - ds.offset[0], (clientY - r.top) / ds.scale - ds.offset[1]];
  }

  widgetValue(id: string, name: string): unknown {
    return this.node(id)?.widgets?.find((x) => x.name === name)?.value;
  }

  /** Apply each seed's "after run" control (randomize / increment / decrement). */
  applySeedControls(): void {
    for (const node of this.nodes) {
      for (const w of node.widgets ?? []) {
        if (!w.name.endsWith(' after run')) continue;
        const seed = node.widgets?.find((x) => x.name === w.name.slice(0, -' after run'.length));
        if (!seed) continue;
        const mode = w.value as SeedControl;
        const max = Number(seed.options.max ?? SEED_MAX);
        const min = Number(seed.options.min ?? 0);
        const v = Number(seed.value);
        if (mode === 'randomize') seed.value = min + Math.floor(Math.random() * Math.min(max - min + 1, 2 ** 32));
        else if (mode === 'increment') seed.value = Math.min(max, v + 1);
        else if (mode === 'decrement') seed.value = Math.max(min, v - 1);
      }
    }
    this.canvas.setDirty(true, false);
  }

  // ---------------------------------------------------------------- run state

  private ensure(id: string): NodeRunState {
    let s = this.state.get(id);
    if (!s) {
      s = { running: false, images: [], inputErrors: {} };
      this.state.set(id, s);
    }
    return s;
  }

  /** Nodes running now (several when independent branches run at the same time). */
  activeIds(): string[] {
    return [...this.state].filter(([, s]) => this.active(s)).map(([id]) => id);
  }

  /** Nodes the server took from its cache for this run. */
  setCached(ids: string[]): void {
    for (const s of this.state.values()) s.cached = false;
    for (const id of ids) this.ensure(id).cached = true;
    this.redraw();
  }

  runState(id: string): NodeRunState | undefined {
    return this.state.get(id);
  }

  private redraw(): void {
    this.canvas.setDirty(true, true);
  }

  clearErrors(): void {
    for (const s of this.state.values()) {
      s.error = undefined;
      s.inputErrors = {};
    }
    for (const n of this.nodes) n.has_errors = false;
    this.redraw();
  }

  /** A node is active while it is the executing one or its progress is still short of its end (the
   *  server may run independent branches at the same time). */
  private active(s: NodeRunState): boolean {
    return s.running || (s.progress !== undefined && s.progress < 1);
  }

  /** A node is done: clear its progress bar and its transient step preview (shrinking it back so it does
   *  not cover its neighbours). */
  private finish(key: string, s: NodeRunState): void {
    s.running = false;
    s.progress = undefined;
    const n = this.node(key);
    if (n) n.progress = undefined;
    if (s.preview && !s.images.length) {
      s.preview = undefined;
      if (n && s.heightBeforePreview !== undefined) {
        n.size[1] = s.heightBeforePreview;
        this.hooks.onChange();
      }
    }
    s.heightBeforePreview = undefined;
  }

  /** The node the server says is executing (`null`: the run is over). */
  setRunning(id: string | null): void {
    for (const [key, s] of this.state) {
      if (key === id) continue;
      if (id === null) this.finish(key, s);
      else if (s.running) {
        s.running = false;
        if (!this.active(s)) this.finish(key, s);
      }
    }
    if (id) this.ensure(id).running = true;
    this.redraw();
  }

  setProgress(id: string, value: number, max: number): void {
    const s = this.ensure(id);
    const n = this.node(id);
    if (max > 0 && value >= max && !s.running) {
      this.finish(id, s);
    } else {
      s.progress = max > 0 ? Math.min(1, value / max) : 0;
      if (n) n.progress = s.progress;
    }
    this.redraw();
  }

  private loadImage(url: string): HTMLImageElement {
    const img = new Image();
    img.onload = () => this.redraw();
    img.src = url;
    return img;
  }

  setPreview(id: string, url: string): void {
    const s = this.ensure(id);
    // a late frame for a node that already finished is dropped (its preview is gone with it)
    if (!this.active(s)) return;
    const node = this.node(id);
    s.preview = this.loadImage(url);
    if (node && s.heightBeforePreview === undefined && node.size[1] < node.computeSize()[1] + 100) {
      // room for the step preview, but never over the node below
      const grow = Math.min(node.computeSize()[1] + 160 - node.size[1], this.freeBelow(node) - NODE_GAP);
      if (grow > 0) {
        s.heightBeforePreview = node.size[1];
        node.size[1] += grow;
      }
    }
  }

  /** Grow a node so its images fit below its widgets (a change the editor saves). */
  private makeRoomForImages(node: AnyNode | undefined, area: number): void {
    if (!node) return;
    const min = node.computeSize()[1];
    if (node.size[1] < min + 140) {
      node.size[1] = min + area;
      this.hooks.onChange();
    }
  }

  /** A node's outputs (`filename` tells a video from an image); `animated`: redraw while they show. */
  setImages(id: string, items: Array<{ url: string; filename: string }>, animated = false): void {
    const s = this.ensure(id);
    for (const m of s.images) m.release();
    s.images = items.map((m) => canvasMedia(m.url, m.filename, animated, () => this.redraw()));
    s.animated = s.images.some((m) => m.kind !== 'image');
    this.makeRoomForImages(this.node(id), IMAGE_AREA);
    this.animateWhileShown();
  }

  /** Forget a node's run state (all nodes' without `id`), releasing its media elements. */
  private dropState(id?: string): void {
    for (const [k, s] of this.state) {
      if (id !== undefined && k !== id) continue;
      for (const m of s.images) m.release();
      this.state.delete(k);
    }
  }

  private animationTimer: ReturnType<typeof setInterval> | undefined;
  /** Redraw at ~12 fps while a node shows animated outputs (the canvas draws their current frame). */
  private animateWhileShown(): void {
    if (this.animationTimer) return;
    this.animationTimer = setInterval(() => {
      const any = [...this.state.entries()].some(([id, s]) => s.animated && s.images.length && this.node(id));
      if (any) this.redraw();
      else {
        clearInterval(this.animationTimer);
        this.animationTimer = undefined;
      }
    }, 80);
  }

  setNodeError(id: string, message: string | undefined, inputErrors: Record<string, string> = {}): void {
    const s = this.ensure(id);
    s.error = message;
    s.inputErrors = inputErrors;
    this.redraw();
  }

  // ---------------------------------------------------------------- view

  /** Size the canvas to its container: the backing store in device pixels, everything else (litegraph's
   *  coordinates, ours) in CSS pixels. */
  resize(): void {
    const parent = this.el.parentElement;
    if (!parent) return;
    const r = parent.getBoundingClientRect();
    const dpr = Math.max(1, window.devicePixelRatio || 1);
    this.cssW = Math.max(1, Math.floor(r.width));
    this.cssH = Math.max(1, Math.floor(r.height));
    this.el.width = Math.round(this.cssW * dpr);
    this.el.height = Math.round(this.cssH * dpr);
    this.el.style.width = `${this.cssW}px`;
    this.el.style.height = `${this.cssH}px`;
    // resizing resets the context; draw in CSS pixels on the device-pixel backing store
    this.el.getContext('2d')?.scale(dpr, dpr);
    this.canvas.setDirty(true, true);
  }

  /** Fit the whole graph into the view. `readable`: never below the zoom where text stays legible
   *  (a larger graph is then shown from its top-left corner) — used when a workflow is opened. */
  fitToView(opts: { readable?: boolean } = {}): void {
    const nodes = this.nodes;
    if (!nodes.length) return;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    const th = LiteGraph.NODE_TITLE_HEIGHT;
    for (const n of nodes) {
      x0 = Math.min(x0, n.pos[0]);
      y0 = Math.min(y0, n.pos[1] - th);
      x1 = Math.max(x1, n.pos[0] + n.size[0]);
      y1 = Math.max(y1, n.pos[1] + n.size[1] + 40);
    }
    const pad = 30;
    const fit = Math.min((this.cssW - 2 * pad) / (x1 - x0), (this.cssH - 2 * pad) / (y1 - y0));
    // Never zoom out so far that titles and widgets become unreadable: a graph too large for the view
    // is shown from its top-left corner (where pipelines start) instead.
    const scale = Math.min(1.25, Math.max(opts.readable ? MIN_FIT_SCALE : 0.15, fit));
    const ds = this.canvas.ds;
    ds.scale = scale;
    const w = this.cssW / scale;
    const h = this.cssH / scale;
    ds.offset[0] = x1 - x0 <= w - (2 * pad) / scale ? (w - (x1 - x0)) / 2 - x0 : pad / scale - x0;
    ds.offset[1] = y1 - y0 <= h - (2 * pad) / scale ? (h - (y1 - y0)) / 2 - y0 : pad / scale - y0;
    this.redraw();
  }

  /** Scroll the view so a node sits in the middle, and select it. */
  centreOn(id: string): void {
    const node = this.node(id);
    if (!node) return;
    const ds = this.canvas.ds;
    ds.offset[0] = this.cssW / 2 / ds.scale - node.pos[0] - node.size[0] / 2;
    ds.offset[1] = this.cssH / 2 / ds.scale - node.pos[1] - node.size[1] / 2;
    this.canvas.selectNode(node as never);
    this.redraw();
  }

  openSearch(e: MouseEvent): void {
    this.canvas.showSearchBox(e);
  }

  copy(): void {
    this.canvas.copyToClipboard();
  }

  paste(): void {
    this.canvas.pasteFromClipboard();
    this.hooks.onChange();
  }

  deleteSelected(): void {
    this.canvas.deleteSelected();
    this.hooks.onChange();
  }
}

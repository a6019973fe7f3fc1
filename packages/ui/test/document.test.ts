import { crc32, deflateSync } from 'node:zlib';
import { LGraph, LiteGraph } from '@comfyorg/litegraph';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBinaryFrame } from '../src/api.ts';
import { comfyPromptToDocument } from '../src/comfy.ts';
import { documentToGraph, graphToDocument, normaliseDocument, type SerialisedGraph } from '../src/document.ts';
import { registerNodeTypes } from '../src/graph/adapter.ts';
import { type NodeDefs, parseObjectInfo, resolveType, searchNodeTypes, widgetLayout } from '../src/nodedefs.ts';
import { readPngText, workflowFromPng } from '../src/png.ts';
import type { WorkflowDocument } from '../src/types.ts';
import { testObjectInfo } from './fixtures/plugin.ts';
import { txt2img } from './fixtures/workflow.ts';

let defs: NodeDefs;

beforeAll(async () => {
  defs = parseObjectInfo(await testObjectInfo());
  registerNodeTypes(defs);
});

/** Through a real litegraph graph: configure from our JSON, serialise back. */
function throughLitegraph(g: SerialisedGraph): SerialisedGraph {
  const graph = new LGraph();
  graph.configure(structuredClone(g) as never);
  return graph.serialize() as unknown as SerialisedGraph;
}

describe('parseObjectInfo (real /object_info from core Registry)', () => {
  it('reads widget kinds, options, sockets and outputs in declaration order', () => {
    const ks = defs.get('pgtest.KSampler')!;
    expect(ks.bareType).toBe('KSampler');
    expect(ks.category).toBe('sampling');
    expect(ks.inputs.map((i) => [i.name, i.kind])).toEqual([
      ['model', 'socket'],
      ['positive', 'socket'],
      ['latent_image', 'socket'],
      ['seed', 'seed'],
      ['steps', 'int'],
      ['cfg', 'float'],
      ['sampler_name', 'combo'],
      ['denoise', 'float'],
      ['add_noise', 'boolean'],
      ['negative', 'socket'],
    ]);
    expect(ks.inputs.find((i) => i.name === 'negative')!.optional).toBe(true);
    expect(ks.inputs.find((i) => i.name === 'sampler_name')!.options).toEqual(['euler', 'ddim']);
    expect(ks.inputs.find((i) => i.name === 'cfg')).toMatchObject({ min: 0, max: 30, step: 0.1, default: 7.5 });
    expect(defs.get('pgtest.TextEncode')!.inputs[1]).toMatchObject({ kind: 'string', multiline: true });
    expect(defs.get('pgtest.CheckpointLoader')!.outputs.map((o) => o.name)).toEqual(['MODEL', 'CLIP', 'VAE']);
    expect(defs.get('pgtest.SaveImage')!.outputNode).toBe(true);
    expect(widgetLayout(ks).filter((w) => w.control)).toEqual([{ input: 'seed', control: true }]);
  });

  it('resolves bare names only when unique, and names the bad entry', () => {
    expect(resolveType(defs, 'KSampler')?.type).toBe('pgtest.KSampler');
    expect(resolveType(defs, 'Nope')).toBeUndefined();
    expect(() => parseObjectInfo({ 'x.Bad': { input: { required: { a: 'INT' } } } })).toThrow(/x\.Bad.*input "a"/);
  });
});

describe('node search', () => {
  it('never matches the plugin prefix every type name shares; finds ComfyUI names by alias', () => {
    expect(searchNodeTypes(defs, 'pgtest')).toEqual([]);
    const prior = parseObjectInfo({
      'priorgraph.DiffusersLoader': { display_name: 'Load Diffusers Model (ONNX)', category: 'loaders', output: [] },
      'priorgraph.PriorSwapCFGGuider': { display_name: 'Prior-swap CFG', category: 'guiders', output: [] },
      'priorgraph.Sampler': { display_name: 'Sampler (KSampler-like)', category: 'sampling', output: [] },
      'priorgraph.VAEDecode': { display_name: 'VAE Decode', category: 'latent', output: [] },
    });
    expect(searchNodeTypes(prior, 'prior')).toEqual(['priorgraph.PriorSwapCFGGuider']);
    expect(searchNodeTypes(prior, 'load checkpoint')).toEqual(['priorgraph.DiffusersLoader']);
    expect(searchNodeTypes(prior, 'ksampler')[0]).toBe('priorgraph.Sampler');
  });

  it('matches names, types and categories case-insensitively, best first', () => {
    expect(searchNodeTypes(defs, 'Load Check')).toEqual(['pgtest.CheckpointLoader']);
    expect(searchNodeTypes(defs, 'latent')[0]).toBe('pgtest.EmptyLatentImage');
    expect(searchNodeTypes(defs, 'latent')).toContain('pgtest.VAEDecode'); // by category
    expect(searchNodeTypes(defs, 'saveimage')).toEqual(['pgtest.SaveImage']);
    expect(searchNodeTypes(defs, 'zzz')).toEqual([]);
    expect(searchNodeTypes(defs, '').length).toBe(defs.size);
    // a LATENT link dragged out of an output: nodes with a LATENT input
    expect(searchNodeTypes(defs, '', 30, { inputType: 'LATENT' }).sort()).toEqual([
      'pgtest.KSampler',
      'pgtest.VAEDecode',
    ]);
    // a link dragged out of a CLIP input: nodes with a CLIP output
    expect(searchNodeTypes(defs, '', 30, { outputType: 'CLIP' })).toEqual(['pgtest.CheckpointLoader']);
  });
});

describe('document <-> litegraph graph', () => {
  it('maps links by output name onto slot indices', () => {
    const { value: g, warnings } = documentToGraph(txt2img(), defs);
    expect(warnings).toEqual([]);
    const decode = g.nodes.find((n) => n.id === 5)!;
    const vaeLink = g.links.find((l) => l[0] === decode.inputs.find((i) => i.name === 'vae')!.link)!;
    expect(vaeLink.slice(1, 6)).toEqual([1, 2, 5, 1, 'VAE']); // VAE is output 2 of the loader
    const latent = g.nodes.find((n) => n.id === 'latent')!;
    expect(latent.widgets_values).toEqual([64, 48, 2]);
    const ks = g.nodes.find((n) => n.id === 4)!;
    expect(ks.widgets_values).toEqual([123456789012, 'randomize', 8, 3.5, 'ddim', 0.75, false]);
    expect(g.last_node_id).toBe(6);
  });

  it('round-trips a document through the JSON conversion', () => {
    const doc = txt2img();
    const back = graphToDocument(documentToGraph(doc, defs).value, defs);
    expect(back.warnings).toEqual([]);
    expect(back.value).toEqual(doc);
  });

  it('round-trips a document through a real litegraph LGraph', () => {
    const doc = txt2img();
    const g = throughLitegraph(documentToGraph(doc, defs).value);
    const back = graphToDocument(g, defs).value;
    // litegraph keeps the viewport outside the graph JSON; the editor adds it back (adapter.serialise)
    expect(back).toEqual({ ...doc, ui: { groups: doc.ui!.groups } });
  });

  it('keeps reroutes through a document and a real litegraph LGraph (links renumbered)', () => {
    const doc = txt2img();
    // two reroutes in a chain on the decoder's samples link, one more on its vae link
    doc.ui = {
      ...doc.ui,
      reroutes: [
        { id: 1, pos: [400, 300], links: ['5/samples'] },
        { id: 2, pos: [450, 320], parentId: 1, links: ['5/samples'] },
        { id: 3, pos: [300, 500], links: ['5/vae'] },
      ],
      linkReroutes: { '5/samples': 2, '5/vae': 3 },
    };
    const g = throughLitegraph(documentToGraph(doc, defs).value);
    expect((g.extra.reroutes as unknown[]).length).toBe(3);
    const back = graphToDocument(g, defs).value;
    expect(back.ui?.reroutes).toEqual(doc.ui.reroutes);
    expect(back.ui?.linkReroutes).toEqual(doc.ui.linkReroutes);
  });

  it('reads what litegraph wrote after editing: new nodes, a drag-connected link, widget edits', () => {
    const graph = new LGraph();
    graph.configure(structuredClone(documentToGraph(txt2img(), defs).value) as never);
    const seed = LiteGraph.createNode('pgtest.SeedSource')!;
    graph.add(seed);
    const ks = graph.getNodeById(4)!;
    const idx = ks.inputs.length;
    ks.addInput('seed', 'INT', { widget: { name: 'seed' } } as never);
    seed.connect(0, ks, idx);
    const steps = ks.widgets!.find((w: { name: string }) => w.name === 'steps')!;
    steps.value = 42;
    const doc = graphToDocument(graph.serialize() as unknown as SerialisedGraph, defs).value;
    const newId = String(seed.id);
    expect(newId).toBe('7');
    expect(doc.nodes[newId]).toMatchObject({
      type: 'pgtest.SeedSource',
      inputs: { value: 7 },
      ui: { controls: { value: 'randomize' } },
    });
    expect(doc.nodes['4'].inputs.seed).toEqual({ node: newId, output: 'seed' });
    expect(doc.nodes['4'].inputs.steps).toBe(42);
    // and a widget input fed by a link survives another round trip
    const again = graphToDocument(throughLitegraph(documentToGraph(doc, defs).value), defs).value;
    expect(again.nodes['4'].inputs.seed).toEqual({ node: newId, output: 'seed' });
  });

  it('keeps unknown node types verbatim and warns', () => {
    const doc = txt2img();
    doc.nodes.x = {
      type: 'other.Mystery',
      version: 3,
      inputs: { a: 1, img: { node: '5', output: 'IMAGE' } },
      ui: { pos: [5, 5] },
    };
    doc.nodes['6'].inputs.images = { node: 'x', output: 'RESULT' };
    const { value, warnings } = documentToGraph(doc, defs);
    expect(warnings).toEqual(['node x: unknown node type "other.Mystery" (kept as is)']);
    const back = graphToDocument(value, defs).value;
    expect(back.nodes.x).toEqual(doc.nodes.x);
    expect(back.nodes['6'].inputs.images).toEqual({ node: 'x', output: 'RESULT' });
  });

  it('fills missing widget inputs, resolves bare names, drops bad links with a warning', () => {
    const doc: WorkflowDocument = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        a: { type: 'EmptyLatentImage', inputs: { width: 128 } },
        b: { type: 'VAEDecode', inputs: { samples: { node: 'a', output: 'NOPE' } } },
      },
    };
    const norm = normaliseDocument(doc, defs);
    expect(norm.nodes.a).toMatchObject({
      type: 'pgtest.EmptyLatentImage',
      inputs: { width: 128, height: 32, batch_size: 1 },
    });
    const { warnings } = documentToGraph(doc, defs);
    expect(warnings).toEqual([
      'node b: input "samples" links to output "NOPE" that node a does not have (link dropped)',
    ]);
    expect(norm.nodes.b.inputs).toEqual({});
  });

  it('round-trips random widget values and positions (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 53 - 1 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 30, noNaN: true }),
        fc.constantFrom('euler', 'ddim'),
        fc.boolean(),
        fc.string(),
        fc.tuple(fc.integer({ min: -5000, max: 5000 }), fc.integer({ min: -5000, max: 5000 })),
        fc.constantFrom('fixed', 'increment', 'decrement', 'randomize'),
        (seed, steps, cfg, sampler, noise, text, pos, control) => {
          const doc = txt2img();
          Object.assign(doc.nodes['4'].inputs, { seed, steps, cfg, sampler_name: sampler, add_noise: noise });
          doc.nodes['4'].ui =
            control === 'fixed' ? { pos, size: [280, 330] } : { pos, size: [280, 330], controls: { seed: control } };
          doc.nodes['2'].inputs.text = text;
          const back = graphToDocument(throughLitegraph(documentToGraph(doc, defs).value), defs).value;
          expect(back.nodes).toEqual(doc.nodes);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('ComfyUI API import', () => {
  it('turns [id, index] links into links by output name and lays nodes out by depth', () => {
    const prompt = {
      '3': {
        class_type: 'KSampler',
        inputs: { model: ['1', 0], positive: ['2', 0], latent_image: ['4', 0], seed: 5, steps: 3 },
      },
      '1': { class_type: 'CheckpointLoader', inputs: { ckpt_name: 'tiny.onnx' } },
      '2': { class_type: 'TextEncode', inputs: { clip: ['1', 1], text: 'hi' }, _meta: { title: 'Prompt' } },
      '4': { class_type: 'EmptyLatentImage', inputs: { width: 16, height: 16, batch_size: 1 } },
      '9': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['1', 7] } },
    };
    const { doc, warnings } = comfyPromptToDocument(prompt, defs);
    expect(warnings).toEqual(['node 9: input "vae" links to output 7 of node 1, which it does not have']);
    expect(doc.nodes['2']).toMatchObject({
      type: 'pgtest.TextEncode',
      title: 'Prompt',
      inputs: { clip: { node: '1', output: 'CLIP' } },
    });
    expect(doc.nodes['3'].inputs.model).toEqual({ node: '1', output: 'MODEL' });
    const x = (id: string) => doc.nodes[id].ui!.pos![0];
    expect(x('1')).toBeLessThan(x('2'));
    expect(x('2')).toBeLessThan(x('3'));
    expect(x('3')).toBeLessThan(x('9'));
    expect(documentToGraph(doc, defs).warnings).toEqual([]);
  });
});

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A real 2×2 RGB PNG with the given text chunks (tEXt, or iTXt for UTF-8). */
function pngWith(text: Record<string, string>, itxt = false): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 2);
  new DataView(ihdr.buffer).setUint32(4, 2);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = new Uint8Array([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 9, 9, 9]);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  for (const [k, v] of Object.entries(text)) {
    parts.push(
      itxt
        ? chunk('iTXt', Buffer.concat([Buffer.from(`${k}\0\0\0\0\0`, 'latin1'), Buffer.from(v, 'utf8')]))
        : chunk('tEXt', Buffer.from(`${k}\0${v}`, 'latin1')),
    );
  }
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array()));
  return Buffer.concat(parts);
}

describe('PNG workflows', () => {
  it('reads tEXt and iTXt chunks', () => {
    expect(readPngText(pngWith({ a: 'x', b: '{"y":1}' }))).toEqual({ a: 'x', b: '{"y":1}' });
    expect(readPngText(pngWith({ workflow: 'é ✓' }, true))).toEqual({ workflow: 'é ✓' });
    expect(() => readPngText(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))).toThrow(/not a PNG/);
  });

  it('prefers the priorgraph workflow, falls back to the ComfyUI prompt', () => {
    const doc = txt2img();
    const prompt = { '1': { class_type: 'CheckpointLoader', inputs: { ckpt_name: 'tiny.onnx' } } };
    const both = workflowFromPng(pngWith({ workflow: JSON.stringify(doc), prompt: JSON.stringify(prompt) }), defs);
    expect(both.source).toBe('workflow');
    expect(both.doc).toEqual(doc);
    const only = workflowFromPng(pngWith({ prompt: JSON.stringify(prompt) }), defs);
    expect(only.source).toBe('prompt');
    expect(only.doc.nodes['1']).toMatchObject({ type: 'pgtest.CheckpointLoader', inputs: { ckpt_name: 'tiny.onnx' } });
    expect(() => workflowFromPng(pngWith({ Software: 'x' }), defs)).toThrow(/no priorgraph workflow/);
  });
});

describe('binary preview frames', () => {
  it('parses type 1 and type 4 frames', async () => {
    const img = new Uint8Array([0xff, 0xd8, 0xff, 1, 2]);
    const f1 = new Uint8Array(8 + img.length);
    new DataView(f1.buffer).setUint32(0, 1);
    new DataView(f1.buffer).setUint32(4, 1);
    f1.set(img, 8);
    const p1 = parseBinaryFrame(f1.buffer)!;
    expect(p1.blob.type).toBe('image/jpeg');
    expect(new Uint8Array(await p1.blob.arrayBuffer())).toEqual(img);
    const meta = Buffer.from(JSON.stringify({ node_id: '4', prompt_id: 'p', image_type: 'image/png' }));
    const f4 = new Uint8Array(8 + meta.length + img.length);
    new DataView(f4.buffer).setUint32(0, 4);
    new DataView(f4.buffer).setUint32(4, meta.length);
    f4.set(meta, 8);
    f4.set(img, 8 + meta.length);
    const p4 = parseBinaryFrame(f4.buffer)!;
    expect([p4.nodeId, p4.promptId, p4.blob.type]).toEqual(['4', 'p', 'image/png']);
    expect(new Uint8Array(await p4.blob.arrayBuffer())).toEqual(img);
    expect(parseBinaryFrame(new Uint8Array([0, 0, 0, 9, 0, 0, 0, 0]).buffer)).toBeUndefined();
  });
});

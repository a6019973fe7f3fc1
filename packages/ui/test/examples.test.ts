/** The shipped examples through the editor's conversions, with the real built-in node plugin's
 *  /object_info: each ComfyUI API-format file imports to the same graph as its priorgraph document,
 *  and each document survives a round trip through a real litegraph graph. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LGraph } from '@comfyorg/litegraph';
import { describe, expect, it } from 'vitest';
import { type PluginDefinition, Registry } from '../../core/src/index.ts';
import { comfyPromptToDocument } from '../src/comfy.ts';
import { documentToGraph, graphToDocument, type SerialisedGraph } from '../src/document.ts';
import { registerNodeTypes } from '../src/graph/adapter.ts';
import { type NodeDefs, parseObjectInfo } from '../src/nodedefs.ts';
import type { WorkflowDocument } from '../src/types.ts';
import { testHost } from './fixtures/plugin.ts';

const DIR = join(import.meta.dirname, '..', '..', '..', 'examples', 'workflows');
const documentsIn = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.api.json')) : [];
// real/: the examples for real model families (their models are not shipped; they open all the same)
const docs = [...documentsIn(DIR), ...documentsIn(join(DIR, 'real')).map((f) => `real/${f}`)];

async function builtinDefs(): Promise<NodeDefs> {
  const plugin = ((await import('../../nodes/src/index.ts')) as { default: PluginDefinition }).default;
  const registry = new Registry();
  registry.register(plugin, 'builtin');
  const defs = parseObjectInfo((await registry.objectInfo(testHost)) as unknown as Record<string, unknown>);
  registerNodeTypes(defs);
  return defs;
}

describe.skipIf(docs.length === 0)('examples/workflows through the editor', () => {
  for (const file of docs) {
    it(`${file}: opens without warnings and round-trips through litegraph`, async () => {
      const defs = await builtinDefs();
      const doc = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as WorkflowDocument;
      const { value, warnings } = documentToGraph(doc, defs);
      expect(warnings).toEqual([]);
      const graph = new LGraph();
      graph.configure(structuredClone(value) as never);
      const back = graphToDocument(graph.serialize() as unknown as SerialisedGraph, defs).value;
      for (const [id, n] of Object.entries(doc.nodes)) {
        expect(back.nodes[id].type).toBe(n.type);
        expect(back.nodes[id].inputs).toEqual(n.inputs);
        expect(back.nodes[id].ui?.pos).toEqual(n.ui?.pos);
      }
    });

    const api = join(DIR, file.replace(/\.json$/, '.api.json'));
    it.skipIf(!existsSync(api))(`${file}: its ComfyUI API form imports to the same nodes and links`, async () => {
      const defs = await builtinDefs();
      const doc = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as WorkflowDocument;
      const imported = comfyPromptToDocument(JSON.parse(readFileSync(api, 'utf8')), defs);
      expect(imported.warnings).toEqual([]);
      expect(Object.keys(imported.doc.nodes).sort()).toEqual(Object.keys(doc.nodes).sort());
      for (const [id, n] of Object.entries(doc.nodes)) {
        expect(imported.doc.nodes[id].type).toBe(n.type);
        expect(imported.doc.nodes[id].inputs).toEqual(n.inputs);
      }
    });
  }
});

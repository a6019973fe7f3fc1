import { describe, expect, it } from 'vitest';
import {
  CURRENT_DOCUMENT_VERSION,
  DocumentError,
  type DocumentMigration,
  isLink,
  parseDocument,
  Registry,
  WorkflowDocumentSchema,
  workflowJsonSchema,
} from '../src/index.js';
import { testPlugin } from './fixtures.js';

const minimal = {
  format: 'priorgraph',
  version: 1,
  nodes: { '1': { type: 'test.Num', inputs: { value: 3 } } },
};

describe('workflow document schema', () => {
  it('fills defaults (version 1, mode normal, empty inputs)', () => {
    const { doc, warnings } = parseDocument(JSON.stringify(minimal));
    expect(warnings).toEqual([]);
    expect(doc.nodes['1']).toEqual({ type: 'test.Num', version: 1, mode: 'normal', inputs: { value: 3 } });
  });

  it('keeps ui data, titles, meta and links by output name', () => {
    const input = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        a: {
          type: 'test.Num',
          version: 1,
          title: 'A',
          inputs: { value: 1 },
          ui: { pos: [1, 2], size: [3, 4], color: '#fff', extra: 1 },
        },
        b: { type: 'test.Add', inputs: { a: { node: 'a', output: 'N' } }, mode: 'bypass' },
      },
      ui: { groups: [{ title: 'g', bounding: [0, 0, 10, 10] }], viewport: { offset: [0, 0], scale: 1 } },
      meta: { name: 'x', anything: [1, 2] },
    };
    const { doc } = parseDocument(input);
    expect(doc.nodes.a.ui).toEqual({ pos: [1, 2], size: [3, 4], color: '#fff', extra: 1 });
    expect(doc.nodes.a.title).toBe('A');
    expect(doc.nodes.b.mode).toBe('bypass');
    expect(isLink(doc.nodes.b.inputs.a)).toBe(true);
    expect(doc.ui?.groups?.[0].title).toBe('g');
    expect(doc.meta).toEqual({ name: 'x', anything: [1, 2] });
  });

  it('rejects bad documents with every issue and its path', () => {
    const bad = {
      format: 'priorgraph',
      version: 1,
      nodes: { '1': { type: '', inputs: {} }, '2': { type: 'x', mode: 'sleeping', version: 0 } },
    };
    let err: unknown;
    try {
      parseDocument(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DocumentError);
    const paths = (err as DocumentError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['nodes.1.type', 'nodes.2.mode', 'nodes.2.version']));
  });

  it('gives clear errors for non-documents', () => {
    expect(() => parseDocument('{not json')).toThrow(/not valid JSON/);
    expect(() => parseDocument([1, 2])).toThrow(/must be a JSON object/);
    expect(() => parseDocument({ '1': { class_type: 'X', inputs: {} } })).toThrow(/fromComfyPrompt/);
    expect(() => parseDocument({ format: 'priorgraph', nodes: {} })).toThrow(/no "version"/);
    expect(() => parseDocument({ format: 'priorgraph', version: 99, nodes: {} })).toThrow(/newer than this priorgraph/);
  });

  it('isLink only accepts exactly {node, output} strings', () => {
    expect(isLink({ node: '1', output: 'X' })).toBe(true);
    expect(isLink({ node: '1', output: 'X', extra: 1 })).toBe(false);
    expect(isLink({ node: 1, output: 'X' })).toBe(false);
    expect(isLink(['1', 0])).toBe(false);
    expect(isLink(null)).toBe(false);
  });

  it('generates a JSON Schema from the zod schema', () => {
    const js = workflowJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(js.properties).toHaveProperty('nodes');
    expect(js.properties).toHaveProperty('format');
    expect(js.required).toEqual(expect.arrayContaining(['format', 'version', 'nodes']));
    expect(JSON.stringify(js)).toContain('"const":"priorgraph"');
    // The schema and the zod parser agree on the minimal document.
    expect(WorkflowDocumentSchema.safeParse(minimal).success).toBe(true);
  });
});

describe('document-format migrations', () => {
  // A synthetic version 0: nodes as an array of {id, class, values} with links as "id:OUTPUT" strings.
  const v0 = {
    format: 'priorgraph',
    version: 0,
    nodes: [
      { id: '1', class: 'test.Num', values: { value: 5 } },
      { id: '2', class: 'test.Show', values: { value: '@1:N' } },
    ],
  };
  const migrations = new Map<number, DocumentMigration>([
    [
      0,
      (doc) => {
        const nodes: Record<string, unknown> = {};
        for (const n of doc.nodes as Array<{ id: string; class: string; values: Record<string, unknown> }>) {
          const inputs: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(n.values)) {
            const m = typeof v === 'string' ? /^@([^:]+):(.+)$/.exec(v) : null;
            inputs[k] = m ? { node: m[1], output: m[2] } : v;
          }
          nodes[n.id] = { type: n.class, version: 1, inputs };
        }
        return { ...doc, nodes };
      },
    ],
  ]);

  it('upgrades a v0 document to v1 and says so', () => {
    expect(CURRENT_DOCUMENT_VERSION).toBe(1);
    const { doc, warnings } = parseDocument(v0, { migrations });
    expect(doc.version).toBe(1);
    expect(doc.nodes['2'].inputs.value).toEqual({ node: '1', output: 'N' });
    expect(warnings).toEqual(['document migrated from format version 0 to 1']);
    // The input object is not modified.
    expect(Array.isArray(v0.nodes)).toBe(true);
  });

  it('reports a missing migration path and a throwing migration', () => {
    expect(() => parseDocument(v0)).toThrow(/no migration from document format version 0 to 1/);
    const throwing = new Map<number, DocumentMigration>([
      [
        0,
        () => {
          throw new Error('cannot read');
        },
      ],
    ]);
    expect(() => parseDocument(v0, { migrations: throwing })).toThrow(/migration 0 → 1 failed: cannot read/);
  });
});

describe('node type version migrations', () => {
  const registry = new Registry();
  registry.register(testPlugin, 'test');

  it('runs the declared migrations from the saved version', () => {
    const r = registry.migrateNode({ type: 'test.Text', version: 1, inputs: { prompt: 'hi', weight: 50 } });
    expect(r).toEqual({ ok: true, inputs: { text: 'hi', strength: 0.5 }, version: 3, migrated: true });
    const r2 = registry.migrateNode({ type: 'Text', version: 2, inputs: { text: 'x' } });
    expect(r2).toMatchObject({ ok: true, inputs: { text: 'x', strength: 1 } });
  });

  it('reports newer versions and missing paths instead of dropping the node', () => {
    expect(registry.migrateNode({ type: 'test.Text', version: 4, inputs: {} })).toMatchObject({
      ok: false,
      reason: 'newer_version',
    });
    expect(registry.migrateNode({ type: 'test.Num', version: 1, inputs: {} })).toMatchObject({
      ok: true,
      migrated: false,
    });
    const reg2 = new Registry();
    reg2.register({
      ...testPlugin,
      name: 'other',
      nodes: [{ ...testPlugin.nodes[0], version: 3, migrations: { 2: (i) => i } }],
    });
    expect(reg2.migrateNode({ type: 'other.Num', version: 1, inputs: {} })).toMatchObject({
      ok: false,
      reason: 'no_migration',
      message: expect.stringMatching(/no migration from version 1 to 2/),
    });
    expect(reg2.migrateNode({ type: 'nope.X', version: 1, inputs: {} })).toMatchObject({
      ok: false,
      reason: 'unknown_type',
    });
  });
});

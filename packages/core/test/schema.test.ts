import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CURRENT_DOCUMENT_VERSION,
  DocumentError,
  type DocumentMigration,
  isLink,
  parseDocument,
  Registry,
  safeParseDocument,
  upgradeNodes,
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

describe('upgrading node versions in a document', () => {
  const registry = new Registry();
  registry.register(testPlugin, 'test');
  const saved = {
    format: 'priorgraph',
    version: 1,
    nodes: {
      old: {
        type: 'test.Text',
        version: 1,
        inputs: { prompt: 'a cat', weight: 25, sampler: 'euler' },
        ui: { pos: [1, 2] },
      },
      cur: { type: 'test.Num', version: 1, inputs: { value: 1 } },
      future: { type: 'test.Text', version: 9, inputs: { text: 'x', later: true } },
      foreign: { type: 'acme.Thing', version: 4, inputs: { any: [1, { deep: true }] }, title: 'kept' },
    },
  };

  it('migrates old nodes, keeps everything else verbatim, and says what happened', () => {
    const { doc, warnings } = parseDocument(saved, { registry });
    expect(doc.nodes.old).toEqual({
      type: 'test.Text',
      version: 3,
      mode: 'normal',
      inputs: { text: 'a cat', strength: 0.25, sampler: 'euler' },
      ui: { pos: [1, 2] },
    });
    expect(doc.nodes.cur.version).toBe(1);
    expect(doc.nodes.future).toEqual({
      type: 'test.Text',
      version: 9,
      mode: 'normal',
      inputs: { text: 'x', later: true },
    });
    expect(doc.nodes.foreign).toEqual({
      type: 'acme.Thing',
      version: 4,
      mode: 'normal',
      title: 'kept',
      inputs: { any: [1, { deep: true }] },
    });
    expect(warnings).toEqual([
      'node old (test.Text) migrated from version 1 to 3',
      expect.stringMatching(/^node future: saved with version 9 of test.Text/),
      expect.stringMatching(/^node foreign: unknown node type "acme.Thing"/),
    ]);
  });

  it('upgradeNodes lists the nodes it could not upgrade', () => {
    const { doc } = parseDocument(saved);
    const up = upgradeNodes(doc, registry);
    expect(up.problems.map((p) => [p.nodeId, p.reason])).toEqual([
      ['future', 'newer_version'],
      ['foreign', 'unknown_type'],
    ]);
  });
});

describe('schema fast path', () => {
  // safeParseDocument checks the common shape by hand and falls back to zod; both must agree.
  const value = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 3 }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(undefined)), { maxLength: 3 }),
    fc.record({ node: fc.constantFrom('', 'a'), output: fc.constantFrom('', 'X') }),
    fc.record({ node: fc.constant('a'), output: fc.constant('X'), extra: fc.integer() }),
  );
  const nodeArb = fc.record(
    {
      type: fc.constantFrom('test.Num', '', 'X', 5),
      version: fc.oneof(fc.constant(undefined), fc.integer({ min: -1, max: 3 }), fc.double(), fc.constant(2 ** 60)),
      mode: fc.constantFrom(undefined, 'normal', 'muted', 'bypass', 'off'),
      title: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 3 }), fc.integer()),
      inputs: fc.oneof(
        fc.constant(undefined),
        fc.constant(null),
        fc.dictionary(fc.constantFrom('a', 'b', 'c'), value, { maxKeys: 3 }),
      ),
      ui: fc.oneof(
        fc.constant(undefined),
        fc.record({ pos: fc.oneof(fc.tuple(fc.integer(), fc.integer()), fc.constant([1])) }),
        fc.record({ color: fc.oneof(fc.string(), fc.integer()), extra: fc.anything() }),
      ),
      junk: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const docArb = fc.record(
    {
      format: fc.constantFrom('priorgraph', 'other'),
      version: fc.constantFrom(1, 2, '1'),
      nodes: fc.oneof(fc.dictionary(fc.constantFrom('1', '2', ''), nodeArb, { maxKeys: 3 }), fc.constant([])),
      ui: fc.oneof(
        fc.constant(undefined),
        fc.record({ groups: fc.constant([{ bounding: [0, 0, 1, 1] }]) }),
        fc.constant(7),
      ),
      meta: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string(), fc.anything()), fc.constant('m')),
    },
    { requiredKeys: ['format', 'version'] },
  );

  it('accepts exactly what the zod schema accepts, with the same result', () => {
    fc.assert(
      fc.property(docArb, (d) => {
        const z = WorkflowDocumentSchema.safeParse(d);
        const f = safeParseDocument(d);
        expect(f.ok).toBe(z.success);
        if (f.ok && z.success) expect(f.doc).toEqual(z.data);
      }),
      { numRuns: 1000 },
    );
  });

  it("builds the parsed document's node dictionary on first read, as an eager copy would be", () => {
    const json = {
      format: 'priorgraph',
      version: 1,
      nodes: { b: { type: 'test.Num', inputs: { value: 1 } }, '10': { type: 'X' }, '2': { type: 'Y', mode: 'muted' } },
      meta: { m: 1 },
    };
    const eager = WorkflowDocumentSchema.parse(json);
    const parse = () => {
      const r = safeParseDocument(json);
      if (!r.ok) throw new Error('did not parse');
      return r.doc;
    };
    const d = parse();
    expect(Object.keys(d)).toEqual(['format', 'version', 'nodes', 'meta']);
    expect(JSON.stringify(d)).toBe(JSON.stringify(eager));
    expect(structuredClone(parse())).toEqual(eager);
    expect({ ...parse() }.nodes).toEqual(eager.nodes);
    expect(Object.keys(d.nodes)).toEqual(['2', '10', 'b']);
    expect(d.nodes).toBe(d.nodes); // built once
    expect(d.nodes.b).not.toBe(json.nodes.b); // a fresh copy of each node
    d.nodes.b.title = 'changed';
    expect(json.nodes.b).not.toHaveProperty('title');
    const w = parse();
    w.nodes = {};
    expect(w.nodes).toEqual({});
    expect(JSON.stringify(w)).toBe('{"format":"priorgraph","version":1,"nodes":{},"meta":{"m":1}}');
    const frozen = Object.freeze(parse());
    expect(frozen.nodes).toEqual(eager.nodes);
    expect(frozen.nodes).toBe(frozen.nodes);
    expect(() => {
      (frozen as { nodes: object }).nodes = {};
    }).toThrow(TypeError);
  });
});

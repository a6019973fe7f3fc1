import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Registry, type ValidationResult, validateWorkflow, type WorkflowDocument } from '../src/index.js';
import { host, testPlugin } from './fixtures.js';
import { dagDocument, dagSpec } from './graphs.js';

const registry = new Registry();
registry.register(testPlugin);

function doc(nodes: Record<string, unknown>): WorkflowDocument {
  return { format: 'priorgraph', version: 1, nodes } as WorkflowDocument;
}
const link = (node: string, output: string) => ({ node, output });
const types = (r: ValidationResult) => [
  ...(r.error ? [r.error.type] : []),
  ...Object.values(r.node_errors).flatMap((n) => n.errors.map((e) => e.type)),
];

describe('validateWorkflow', () => {
  it('accepts a valid workflow and lists the outputs it would run', async () => {
    const r = await validateWorkflow(
      doc({
        a: { type: 'test.Num', inputs: { value: 2 } },
        b: { type: 'Add', inputs: { a: link('a', 'N') } },
        c: { type: 'test.Show', inputs: { value: link('b', 'SUM') } },
        t: { type: 'test.Text', version: 1, inputs: { prompt: 'old', weight: 50, sampler: 'ddim' } },
      }),
      registry,
      host,
    );
    expect(r).toEqual({ ok: true, node_errors: {}, outputs: ['c'] });
  });

  it('reports every problem at once in ComfyUI node_errors shape', async () => {
    const r = await validateWorkflow(
      doc({
        num: { type: 'test.Num', inputs: { value: 5000 } },
        low: { type: 'test.Num', inputs: { value: -5000 } },
        frac: { type: 'test.Num', inputs: { value: 1.5 } },
        add: { type: 'test.Add', inputs: { b: link('num', 'N') } },
        ghost: { type: 'test.Add', inputs: { a: link('nowhere', 'N'), b: link('num', 'NOPE') } },
        mism: { type: 'test.Add', inputs: { a: link('txt', 'STRING') } },
        lit: { type: 'test.Add', inputs: { a: 5 } },
        txt: { type: 'test.Text', version: 3, inputs: { text: 'forbidden word', sampler: 'plms', strength: 1 } },
        show: { type: 'test.Show', inputs: { value: link('add', 'SUM') } },
        show2: { type: 'test.Show', inputs: { value: link('mism', 'SUM') } },
        unk: { type: 'acme.Upscale', inputs: { image: link('num', 'N') } },
        newer: { type: 'test.Text', version: 7, inputs: {} },
      }),
      registry,
      host,
    );
    expect(r.ok).toBe(false);
    expect(r.error?.type).toBe('missing_node_type');
    const e = (id: string) => r.node_errors[id]?.errors ?? [];
    expect(e('num')).toEqual([
      {
        type: 'value_bigger_than_max',
        message: 'Value 5000 bigger than max of 1000',
        details: 'value',
        extra_info: { input_name: 'value', received_value: 5000 },
      },
    ]);
    expect(e('low')[0].type).toBe('value_smaller_than_min');
    expect(e('frac')[0]).toMatchObject({ type: 'invalid_input_type', extra_info: { input_name: 'value' } });
    expect(e('add')).toEqual([
      expect.objectContaining({ type: 'required_input_missing', extra_info: { input_name: 'a' } }),
    ]);
    expect(e('ghost').map((x) => x.type)).toEqual(['bad_linked_input', 'bad_linked_input']);
    expect(e('ghost')[0].details).toMatch(/missing node "nowhere"/);
    expect(e('ghost')[1].details).toMatch(/no such output/);
    expect(e('mism')[0]).toMatchObject({
      type: 'return_type_mismatch',
      extra_info: { input_name: 'a', received_type: 'STRING' },
    });
    expect(e('lit')[0]).toMatchObject({ type: 'bad_linked_input', details: expect.stringMatching(/expects a link/) });
    expect(e('txt')[0]).toMatchObject({ type: 'value_not_in_list', extra_info: { input_name: 'sampler' } });
    // The custom hook runs only when the built-in checks pass.
    expect(e('txt').map((x) => x.type)).not.toContain('custom_validation_failed');
    expect(e('unk')[0]).toMatchObject({ type: 'missing_node_type', extra_info: { class_type: 'acme.Upscale' } });
    expect(e('newer')[0]).toMatchObject({ type: 'node_version_unsupported' });
    expect(r.node_errors.unk.class_type).toBe('acme.Upscale');
    // dependent_outputs: the outputs whose ancestry holds the node.
    expect(r.node_errors.num.dependent_outputs).toEqual(['show']);
    expect(r.node_errors.add.dependent_outputs).toEqual(['show']);
    expect(r.node_errors.mism.dependent_outputs).toEqual(['show2']);
    expect(r.node_errors.unk.dependent_outputs).toEqual([]);
    expect(r.outputs).toEqual(['show', 'show2']);
  });

  it('runs the node validate hook with literal inputs', async () => {
    const r = await validateWorkflow(
      doc({
        t: { type: 'test.Text', version: 3, inputs: { text: 'a forbidden thing', sampler: 'euler', strength: 1 } },
        s: { type: 'test.ShowString', inputs: { s: link('t', 'STRING') } },
      }),
      registry,
      host,
    );
    expect(r.error?.type).toBe('prompt_outputs_failed_validation');
    expect(r.node_errors.t.errors).toEqual([
      {
        type: 'custom_validation_failed',
        message: 'Custom validation failed',
        details: 'text: the word "forbidden" is not allowed',
        extra_info: { input_name: 'text' },
      },
    ]);
    expect(r.node_errors.t.dependent_outputs).toEqual(['s']);
  });

  it('finds cycles, including self-loops, and does not hang', async () => {
    const r = await validateWorkflow(
      doc({
        a: { type: 'test.Add', inputs: { a: link('b', 'SUM') } },
        b: { type: 'test.Add', inputs: { a: link('a', 'SUM') } },
        c: { type: 'test.Add', inputs: { a: link('c', 'SUM') } },
        d: { type: 'test.Add', inputs: { a: link('a', 'SUM') } },
        s: { type: 'test.Show', inputs: { value: link('d', 'SUM') } },
      }),
      registry,
      host,
    );
    const cyc = Object.entries(r.node_errors)
      .filter(([, v]) => v.errors.some((x) => x.type === 'dependency_cycle'))
      .map(([k]) => k)
      .sort();
    expect(cyc).toEqual(['a', 'b', 'c']);
    expect(r.node_errors.a.dependent_outputs).toEqual(['s']);
  });

  it('reports prompt_no_outputs, unknown requested outputs, and honours muting', async () => {
    const noOut = await validateWorkflow(doc({ a: { type: 'test.Num', inputs: { value: 1 } } }), registry, host);
    expect(noOut).toMatchObject({ ok: false, error: { type: 'prompt_no_outputs' } });
    const muted = await validateWorkflow(
      doc({
        a: { type: 'test.Num', inputs: { value: 1 } },
        s: { type: 'test.Show', mode: 'muted', inputs: { value: link('a', 'N') } },
        bad: { type: 'test.Num', mode: 'muted', inputs: { value: 'not a number' } },
      }),
      registry,
      host,
    );
    expect(muted.error?.type).toBe('prompt_no_outputs');
    expect(muted.node_errors).toEqual({});
    const partial = await validateWorkflow(doc({ a: { type: 'test.Num', inputs: { value: 1 } } }), registry, host, {
      outputs: ['a'],
    });
    expect(partial).toEqual({ ok: true, node_errors: {}, outputs: ['a'] });
    const unknown = await validateWorkflow(doc({ a: { type: 'test.Num', inputs: { value: 1 } } }), registry, host, {
      outputs: ['zz'],
    });
    expect(unknown.error).toMatchObject({ type: 'invalid_prompt', details: expect.stringMatching(/zz/) });
    // an id that only an object's prototype has is no node either
    const inherited = await validateWorkflow(doc({ a: { type: 'test.Num', inputs: { value: 1 } } }), registry, host, {
      outputs: ['a', 'constructor'],
    });
    expect(inherited.error).toMatchObject({ type: 'invalid_prompt', extra_info: { outputs: ['constructor'] } });
    const linkedToMuted = await validateWorkflow(
      doc({
        a: { type: 'test.Num', mode: 'muted', inputs: { value: 1 } },
        s: { type: 'test.Show', inputs: { value: link('a', 'N') } },
      }),
      registry,
      host,
    );
    expect(linkedToMuted.node_errors.s.errors[0]).toMatchObject({
      type: 'required_input_missing',
      details: expect.stringMatching(/muted node "a"/),
    });
  });

  it('with requested outputs, checks only their ancestry (unknown types still reported anywhere)', async () => {
    const nodes = {
      a: { type: 'test.Num', inputs: { value: 1 } },
      s: { type: 'test.Show', inputs: { value: link('a', 'N') } },
      broken: { type: 'test.Add', inputs: {} },
      loop: { type: 'test.Add', inputs: { a: link('loop', 'SUM') } },
      s2: { type: 'test.Show', inputs: { value: link('broken', 'SUM') } },
    };
    const partial = await validateWorkflow(doc(nodes), registry, host, { outputs: ['s'] });
    expect(partial).toEqual({ ok: true, node_errors: {}, outputs: ['s'] });
    const all = await validateWorkflow(doc(nodes), registry, host);
    expect(Object.keys(all.node_errors).sort()).toEqual(['broken', 'loop']);
    expect(all.node_errors.broken.dependent_outputs).toEqual(['s2']);
    const other = await validateWorkflow(doc(nodes), registry, host, { outputs: ['s2'] });
    expect(Object.keys(other.node_errors)).toEqual(['broken']);
    const unknown = await validateWorkflow(doc({ ...nodes, x: { type: 'zz.Gone', inputs: {} } }), registry, host, {
      outputs: ['s'],
    });
    expect(unknown.error?.type).toBe('missing_node_type');
    expect(Object.keys(unknown.node_errors)).toEqual(['x']);
  });

  it('reports ambiguous bare names', async () => {
    const r2 = new Registry();
    r2.register(testPlugin);
    r2.register({ ...testPlugin, name: 'dup' });
    const r = await validateWorkflow(
      doc({ s: { type: 'Show', inputs: { value: link('n', 'N') } }, n: { type: 'test.Num', inputs: { value: 1 } } }),
      r2,
      host,
    );
    expect(r.node_errors.s.errors[0]).toMatchObject({
      type: 'ambiguous_node_type',
      details: expect.stringMatching(/dup.Show/),
    });
  });

  it('turns a throwing validate hook or combo resolver into errors', async () => {
    const r2 = new Registry();
    r2.register({
      name: 'x',
      version: '1',
      nodes: [
        {
          type: 'Hook',
          version: 1,
          category: 'x',
          outputNode: true,
          inputs: { c: { kind: 'combo', options: () => Promise.reject(new Error('no disk')) } },
          outputs: [],
          validate: () => {
            throw new Error('hook exploded');
          },
          execute: () => ({}),
        },
        {
          type: 'Hook2',
          version: 1,
          category: 'x',
          outputNode: true,
          inputs: {},
          outputs: [],
          validate: () => {
            throw 'not an error';
          },
          execute: () => ({}),
        },
      ],
    });
    const r = await validateWorkflow(
      doc({ h: { type: 'x.Hook', inputs: { c: 'a' } }, h2: { type: 'x.Hook2', inputs: {} } }),
      r2,
      host,
    );
    expect(r.node_errors.h.errors[0]).toMatchObject({
      type: 'value_not_in_list',
      details: expect.stringMatching(/no disk/),
    });
    expect(r.node_errors.h2.errors[0]).toMatchObject({
      type: 'custom_validation_failed',
      details: 'validate threw: not an error',
    });
  });

  it('reports errors in input order and node order when a combo lists its options asynchronously', async () => {
    // Validation is synchronous for a node without asynchronous checks and waits only where one
    // is: the errors must still come out in input order, node by node, in document order.
    const r2 = new Registry();
    const later = (opts: string[]) => () => new Promise<string[]>((resolve) => setTimeout(() => resolve(opts), 5));
    r2.register({
      name: 'o',
      version: '1',
      nodes: [
        {
          type: 'Mixed',
          version: 1,
          category: 'o',
          outputNode: true,
          inputs: {
            lo: { kind: 'int', min: 0, max: 10 },
            pick: { kind: 'combo', options: later(['a', 'b']) },
            hi: { kind: 'int', min: 0, max: 10 },
            pick2: { kind: 'combo', options: ['x'] },
            need: { kind: 'socket', type: 'INT' },
          },
          outputs: [],
          execute: () => ({}),
        },
      ],
    });
    const bad = { lo: -1, pick: 'z', hi: 11, pick2: 'y' };
    const r = await validateWorkflow(
      doc({ m1: { type: 'o.Mixed', inputs: bad }, m2: { type: 'o.Mixed', inputs: { ...bad, pick: 'a' } } }),
      r2,
      host,
    );
    expect(Object.keys(r.node_errors)).toEqual(['m1', 'm2']);
    const named = (id: string) => r.node_errors[id].errors.map((e) => `${e.extra_info.input_name}:${e.type}`);
    expect(named('m1')).toEqual([
      'lo:value_smaller_than_min',
      'pick:value_not_in_list',
      'hi:value_bigger_than_max',
      'pick2:value_not_in_list',
      'need:required_input_missing',
    ]);
    expect(named('m2')).toEqual([
      'lo:value_smaller_than_min',
      'hi:value_bigger_than_max',
      'pick2:value_not_in_list',
      'need:required_input_missing',
    ]);
  });

  it('never throws on garbage, and reports it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (value) => {
        const r = await validateWorkflow(value, registry, host);
        expect(r.ok).toBe(false);
        expect(types(r).length).toBeGreaterThan(0);
      }),
      { numRuns: 200 },
    );
  });

  const typeArb = fc.constantFrom(
    'test.Num',
    'test.Add',
    'test.Mix',
    'test.Show',
    'test.Text',
    'Mix',
    'zz.Unknown',
    '',
  );
  const valueArb = fc.oneof(
    fc.integer({ min: -2000, max: 2000 }),
    fc.double(),
    fc.string({ maxLength: 4 }),
    fc.boolean(),
    fc.constant(null),
    fc.record({
      node: fc.constantFrom('a', 'b', 'c', 'd', 'ghost'),
      output: fc.constantFrom('N', 'SUM', 'OUT', 'STRING', 'X'),
    }),
  );
  const randomGraph = fc.dictionary(
    fc.constantFrom('a', 'b', 'c', 'd'),
    fc.record({
      type: typeArb,
      version: fc.oneof(fc.constant(1), fc.integer({ min: -1, max: 5 })),
      mode: fc.constantFrom('normal', 'normal', 'muted', 'bypass', 'weird'),
      inputs: fc.dictionary(fc.constantFrom('a', 'b', 'value', 'x', 'y', 'v', 'text', 'sampler'), valueArb, {
        maxKeys: 4,
      }),
    }),
  );

  it('never throws on random graphs; a failed result always carries an error', async () => {
    await fc.assert(
      fc.asyncProperty(randomGraph, async (nodes) => {
        const r = await validateWorkflow({ format: 'priorgraph', version: 1, nodes }, registry, host);
        expect(typeof r.ok).toBe('boolean');
        if (r.ok) {
          expect(r.error).toBeUndefined();
          expect(r.node_errors).toEqual({});
        } else {
          expect(types(r).length).toBeGreaterThan(0);
        }
        for (const [id, ne] of Object.entries(r.node_errors)) {
          expect(ne.errors.length).toBeGreaterThan(0);
          expect(ne.class_type).toBe(nodes[id].type);
          for (const e of ne.errors) expect(typeof e.message).toBe('string');
        }
      }),
      { numRuns: 400 },
    );
  });

  type Mutation = { name: string; expected: string; apply: (d: WorkflowDocument, i: number) => boolean };
  const mutations: Mutation[] = [
    {
      name: 'unknown type',
      expected: 'missing_node_type',
      apply: (d, i) => {
        d.nodes[`m${i}`].type = 'nope.Type';
        return true;
      },
    },
    {
      name: 'missing required',
      expected: 'required_input_missing',
      apply: (d) => {
        const s = Object.keys(d.nodes).find((k) => k.startsWith('s'))!;
        delete d.nodes[s].inputs.value;
        return true;
      },
    },
    {
      name: 'link to missing node',
      expected: 'bad_linked_input',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.z = { node: 'ghost', output: 'OUT' };
        return true;
      },
    },
    {
      name: 'link to missing output',
      expected: 'bad_linked_input',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.z = { node: 'm0', output: 'NOPE' };
        return true;
      },
    },
    {
      name: 'self loop',
      expected: 'dependency_cycle',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.z = { node: `m${i}`, output: 'OUT' };
        return true;
      },
    },
    {
      name: 'back edge',
      expected: 'dependency_cycle',
      apply: (d, i) => {
        // m<i> feeds some later node j; make m<i> depend on j.
        const j = Object.keys(d.nodes).find(
          (k) =>
            k.startsWith('m') &&
            Object.values(d.nodes[k].inputs).some(
              (v) => typeof v === 'object' && v !== null && (v as { node?: string }).node === `m${i}`,
            ),
        );
        if (!j) return false;
        d.nodes[`m${i}`].inputs.z = { node: j, output: 'OUT' };
        return true;
      },
    },
    {
      name: 'type mismatch',
      expected: 'return_type_mismatch',
      apply: (d, i) => {
        d.nodes.txt = {
          type: 'test.Text',
          version: 3,
          mode: 'normal',
          inputs: { text: 'x', sampler: 'euler', strength: 1 },
        };
        d.nodes[`m${i}`].inputs.z = { node: 'txt', output: 'STRING' };
        return true;
      },
    },
    {
      name: 'wrong literal type',
      expected: 'invalid_input_type',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.v = 'seven';
        return true;
      },
    },
    {
      name: 'fractional int',
      expected: 'invalid_input_type',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.v = 0.5;
        return true;
      },
    },
    {
      name: 'out of range',
      expected: 'value_bigger_than_max',
      apply: (d) => {
        d.nodes.num = { type: 'test.Num', version: 1, mode: 'normal', inputs: { value: 1001 } };
        return true;
      },
    },
    {
      name: 'combo',
      expected: 'value_not_in_list',
      apply: (d) => {
        d.nodes.txt = {
          type: 'test.Text',
          version: 3,
          mode: 'normal',
          inputs: { text: 'x', sampler: 'heun', strength: 1 },
        };
        return true;
      },
    },
    {
      name: 'custom',
      expected: 'custom_validation_failed',
      apply: (d) => {
        d.nodes.txt = {
          type: 'test.Text',
          version: 3,
          mode: 'normal',
          inputs: { text: 'forbidden', sampler: 'euler', strength: 1 },
        };
        return true;
      },
    },
    {
      name: 'no outputs',
      expected: 'prompt_no_outputs',
      apply: (d) => {
        for (const k of Object.keys(d.nodes)) if (k.startsWith('s')) d.nodes[k].mode = 'muted';
        return true;
      },
    },
    {
      name: 'socket literal',
      expected: 'bad_linked_input',
      apply: (d, i) => {
        d.nodes[`m${i}`].inputs.x = 3;
        return true;
      },
    },
  ];

  it('accepts random valid DAGs and finds the defect in each mutated one', async () => {
    await fc.assert(
      fc.asyncProperty(dagSpec(), fc.nat(), fc.constantFrom(...mutations), async (spec, pick, mutation) => {
        const good = dagDocument(spec);
        expect(await validateWorkflow(good, registry, host)).toMatchObject({ ok: true });
        const bad = structuredClone(good);
        if (!mutation.apply(bad, pick % spec.links.length)) return;
        const r = await validateWorkflow(bad, registry, host);
        expect(r.ok).toBe(false);
        expect(types(r)).toContain(mutation.expected);
      }),
      { numRuns: 300 },
    );
  });
  it('hands each node its own literals: validate hooks as written, infer hooks with defaults (property, seeded)', async () => {
    // Validation reuses one node check for the next node when nothing keeps it, and keeps literals
    // only for types with a hook: a hooked node must never see another node's literals.
    const seen = { validate: new Map<string, unknown>(), infer: new Map<string, unknown>() };
    const inputs = {
      id: { kind: 'string' },
      x: { kind: 'int', default: 7, optional: true },
      y: { kind: 'string', optional: true },
    } as const;
    const hooked = (type: string, hooks: 'validate' | 'infer' | 'both') => ({
      type,
      version: 1,
      category: 'x',
      outputNode: true,
      inputs,
      outputs: [],
      ...(hooks !== 'infer'
        ? {
            validate: (lit: Record<string, unknown>) => {
              seen.validate.set(String(lit.id), { ...lit });
              return [];
            },
          }
        : {}),
      ...(hooks !== 'validate'
        ? {
            infer: (lit: Record<string, unknown>) => {
              seen.infer.set(String(lit.id), { ...lit });
              return undefined;
            },
          }
        : {}),
      execute: () => ({}),
    });
    const r2 = new Registry();
    r2.register({
      name: 'x',
      version: '1',
      nodes: [
        { type: 'Plain', version: 1, category: 'x', outputNode: true, inputs, outputs: [], execute: () => ({}) },
        hooked('V', 'validate'),
        hooked('I', 'infer'),
        hooked('VI', 'both'),
      ],
    });
    const node = fc.record(
      {
        type: fc.constantFrom('x.Plain', 'x.V', 'x.I', 'x.VI'),
        x: fc.integer({ min: -5, max: 5 }),
        y: fc.string({ maxLength: 3 }),
      },
      { requiredKeys: ['type'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(node, { minLength: 1, maxLength: 12 }), async (list) => {
        seen.validate.clear();
        seen.infer.clear();
        const nodes: Record<string, unknown> = {};
        list.forEach(({ type, ...lit }, i) => {
          nodes[`n${i}`] = { type, inputs: { id: `n${i}`, ...lit } };
        });
        const r = await validateWorkflow(doc(nodes), r2, host);
        expect(r.ok).toBe(true);
        list.forEach(({ type, ...lit }, i) => {
          const id = `n${i}`;
          const written = { id, ...lit };
          const withDefaults = { x: 7, ...written };
          expect(seen.validate.get(id)).toEqual(type === 'x.V' || type === 'x.VI' ? written : undefined);
          expect(seen.infer.get(id)).toEqual(type === 'x.I' || type === 'x.VI' ? withDefaults : undefined);
        });
      }),
      { seed: 4242, numRuns: 200 },
    );
  });
});

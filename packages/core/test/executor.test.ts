import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  defineNode,
  definePlugin,
  type ExecutionEvent,
  Executor,
  estimateSize,
  type NodeContext,
  Registry,
  sizeOf,
  type WorkflowDocument,
} from '../src/index.js';
import { callsIn, host, testPlugin } from './fixtures.js';
import { dagDocument, dagSpec, descendantIds, neededIds, referenceValues } from './graphs.js';

const registry = new Registry();
registry.register(testPlugin);

let counter = 0;
const pid = (name: string) => `${name}-${++counter}`;
const link = (node: string, output: string) => ({ node, output });
function doc(nodes: Record<string, unknown>): WorkflowDocument {
  return { format: 'priorgraph', version: 1, nodes } as WorkflowDocument;
}
/** An output node with no inputs or outputs that runs every time and hands its ctx to `look`. */
const peekNode = (type: string, look: (ctx: NodeContext) => void) =>
  defineNode({
    type,
    version: 1,
    category: 'x',
    outputNode: true,
    notIdempotent: true,
    inputs: {},
    outputs: [],
    execute: (_i, ctx) => {
      look(ctx);
      return {};
    },
  });
async function run(ex: Executor, d: WorkflowDocument, opts: { outputs?: string[]; signal?: AbortSignal } = {}) {
  const promptId = pid('run');
  const events: ExecutionEvent[] = [];
  const result = await ex.run(d, { promptId, onEvent: (e) => events.push(e), ...opts });
  return { result, events, promptId, ran: callsIn(promptId).sort() };
}

const chain = doc({
  a: { type: 'test.Num', inputs: { value: 2 } },
  b: { type: 'test.Num', inputs: { value: 3 } },
  sum: { type: 'test.Add', inputs: { a: link('a', 'N'), b: link('b', 'N') } },
  show: { type: 'test.Show', inputs: { value: link('sum', 'SUM') } },
  unused: { type: 'test.Num', inputs: { value: 9 } },
});

describe('Executor', () => {
  it('runs only what the outputs need, in dependency order, with typed events', async () => {
    const ex = new Executor(registry, { host });
    const { result, events, promptId, ran } = await run(ex, chain);
    expect(result).toEqual({
      status: 'success',
      executed: expect.any(Array),
      cached: [],
      outputs: { show: { text: ['5'] } },
    });
    expect(ran).toEqual(['a', 'b', 'show', 'sum']);
    const order = result.executed;
    expect(order.indexOf('sum')).toBeGreaterThan(order.indexOf('a'));
    expect(order.indexOf('sum')).toBeGreaterThan(order.indexOf('b'));
    expect(order.at(-1)).toBe('show');
    expect(events[0]).toEqual({ type: 'execution_start', promptId });
    expect(
      events
        .filter((e) => e.type === 'node_start')
        .map((e) => (e as { nodeId: string }).nodeId)
        .sort(),
    ).toEqual(['a', 'b', 'show', 'sum']);
    expect(events).toContainEqual({ type: 'node_start', promptId, nodeId: 'sum', nodeType: 'test.Add' });
    expect(events).toContainEqual({
      type: 'node_output',
      promptId,
      nodeId: 'show',
      nodeType: 'test.Show',
      ui: { text: ['5'] },
    });
    expect(events.at(-1)).toEqual({ type: 'success', promptId, executed: order, outputs: { show: { text: ['5'] } } });
  });

  it('serves an unchanged re-run from the cache and re-runs only what changed', async () => {
    const ex = new Executor(registry, { host });
    await run(ex, chain);
    const again = await run(ex, chain);
    expect(again.ran).toEqual([]);
    expect(again.result.cached).toEqual(['show']);
    expect(again.result.outputs).toEqual({ show: { text: ['5'] } });
    expect(again.events.map((e) => e.type)).toEqual(['execution_start', 'execution_cached', 'node_output', 'success']);

    const changed = structuredClone(chain);
    changed.nodes.b.inputs.value = 10;
    const third = await run(ex, changed);
    expect(third.ran).toEqual(['b', 'show', 'sum']);
    expect(third.result.cached).toEqual(['a']);
    expect(third.result.outputs).toEqual({ show: { text: ['12'] } });
    // ui-only edits (positions, titles) never invalidate the cache
    const moved = structuredClone(changed);
    moved.nodes.a.ui = { pos: [100, 100] };
    moved.nodes.a.title = 'renamed';
    expect((await run(ex, moved)).ran).toEqual([]);
  });

  it('runs requested outputs only (partial execution)', async () => {
    const ex = new Executor(registry, { host });
    const { result, ran } = await run(ex, chain, { outputs: ['unused'] });
    expect(result.status).toBe('success');
    expect(ran).toEqual(['unused']);
  });

  it('never caches notIdempotent nodes, and re-runs their descendants', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      clock: { type: 'test.Clock', inputs: {} },
      add: { type: 'test.Add', inputs: { a: link('clock', 'N') } },
      show: { type: 'test.Show', inputs: { value: link('add', 'SUM') } },
      other: { type: 'test.Num', inputs: { value: 1 } },
      show2: { type: 'test.Show', inputs: { value: link('other', 'N') } },
    });
    await run(ex, d);
    const again = await run(ex, d);
    expect(again.ran).toEqual(['add', 'clock', 'show']);
    expect(again.result.cached).toEqual(['show2']);
  });

  it('does not run muted nodes; links to them give undefined', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      a: { type: 'test.Num', inputs: { value: 4 } },
      m: { type: 'test.Num', mode: 'muted', inputs: { value: 100 } },
      sum: { type: 'test.Add', inputs: { a: link('a', 'N'), b: link('m', 'N') } },
      show: { type: 'test.Show', inputs: { value: link('sum', 'SUM') } },
      mutedShow: { type: 'test.Show', mode: 'muted', inputs: { value: link('a', 'N') } },
    });
    const { result, ran } = await run(ex, d);
    expect(ran).toEqual(['a', 'show', 'sum']);
    expect(result.outputs).toEqual({ show: { text: ['4'] } });
  });

  it('bypass passes the first input of the matching type through', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      a: { type: 'test.Num', inputs: { value: 4 } },
      b: { type: 'test.Num', inputs: { value: 5 } },
      sum: { type: 'test.Add', mode: 'bypass', inputs: { a: link('a', 'N'), b: link('b', 'N') } },
      show: { type: 'test.Show', inputs: { value: link('sum', 'SUM') } },
    });
    const { result, ran } = await run(ex, d);
    expect(ran).toEqual(['a', 'b', 'show']);
    expect(result.executed).not.toContain('sum');
    expect(result.outputs).toEqual({ show: { text: ['4'] } });
  });

  it('runs independent async branches concurrently', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      a: { type: 'test.Num', inputs: { value: 1 } },
      s1: { type: 'test.Sleep', inputs: { value: link('a', 'N'), ms: 30, steps: 2 } },
      s2: { type: 'test.Sleep', inputs: { value: link('a', 'N'), ms: 30, steps: 2 } },
      o1: { type: 'test.Show', inputs: { value: link('s1', 'N') } },
      o2: { type: 'test.Show', inputs: { value: link('s2', 'N') } },
    });
    const { result, events } = await run(ex, d);
    expect(result.status).toBe('success');
    const seq = events
      .filter((e) => e.type === 'node_start' || e.type === 'progress')
      .map((e) => `${e.type}:${(e as { nodeId: string }).nodeId}`);
    // Both sleepers start before either reports its first step.
    const firstProgress = seq.findIndex((s) => s.startsWith('progress'));
    expect(seq.slice(0, firstProgress)).toEqual(expect.arrayContaining(['node_start:s1', 'node_start:s2']));
    expect(events).toContainEqual(expect.objectContaining({ type: 'progress', nodeId: 's1', value: 2, max: 2 }));
  });

  it('cancels: no further nodes start, running nodes see the signal, status interrupted', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      a: { type: 'test.Num', inputs: { value: 1 } },
      slow: { type: 'test.Sleep', inputs: { value: link('a', 'N'), ms: 10, steps: 500 } },
      after: { type: 'test.Add', inputs: { a: link('slow', 'N') } },
      show: { type: 'test.Show', inputs: { value: link('after', 'SUM') } },
    });
    const ac = new AbortController();
    const promptId = pid('cancel');
    const events: ExecutionEvent[] = [];
    const result = await ex.run(d, {
      promptId,
      signal: ac.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'progress' && e.value === 2) ac.abort();
      },
    });
    expect(result.status).toBe('interrupted');
    expect(result.executed).toEqual(['a']);
    expect(callsIn(promptId).sort()).toEqual(['a', 'slow']);
    expect(events.at(-1)).toEqual({
      type: 'interrupted',
      promptId,
      nodeId: 'slow',
      nodeType: 'test.Sleep',
      executed: ['a'],
    });
    expect(events.some((e) => e.type === 'error')).toBe(false);
    // Aborted before it starts: nothing runs.
    const pre = new AbortController();
    pre.abort();
    const r2 = await run(ex, d, { signal: pre.signal });
    expect(r2.result.status).toBe('interrupted');
    expect(r2.ran).toEqual([]);
  });

  it('a throwing node fails the run with its id, type and message; the process survives', async () => {
    const ex = new Executor(registry, { host });
    for (const [how, message, errorType] of [
      ['error', 'boom from Fail', 'RangeError'],
      ['string', 'non-Error thrown: a plain string', 'NonErrorThrown'],
      ['object', 'non-Error thrown: {"code":42}', 'NonErrorThrown'],
      ['undefined', 'non-Error thrown: undefined', 'NonErrorThrown'],
      ['async', 'async boom', 'Error'],
    ] as const) {
      const d = doc({
        a: { type: 'test.Num', inputs: { value: 1 } },
        f: { type: 'test.Fail', inputs: { value: link('a', 'N'), how } },
        show: { type: 'test.Show', inputs: { value: link('f', 'N') } },
      });
      const { result, events, ran } = await run(ex, d);
      expect(result.status).toBe('error');
      expect(result.error).toMatchObject({ nodeId: 'f', nodeType: 'test.Fail', message, errorType });
      expect(ran).not.toContain('show');
      const err = events.find((e) => e.type === 'error');
      expect(err).toMatchObject({ nodeId: 'f', nodeType: 'test.Fail', message, executed: expect.any(Array) });
      expect((err as { inputs: Record<string, unknown> }).inputs).toMatchObject({ how });
    }
  });

  it('refuses an invalid workflow with the validation result', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({ s: { type: 'test.Show', inputs: { value: link('nope', 'N') } } });
    const { result, events, ran } = await run(ex, d);
    expect(ran).toEqual([]);
    expect(result.status).toBe('error');
    expect(result.error?.errorType).toBe('validation_failed');
    expect(result.error?.nodeId).toBe('s');
    expect(result.error?.validation?.node_errors.s.errors[0].type).toBe('bad_linked_input');
    expect(events.map((e) => e.type)).toEqual(['execution_start', 'error']);
    const garbage = await ex.run({ nodes: 5 } as unknown as WorkflowDocument, { promptId: 'g' });
    expect(garbage.error?.errorType).toBe('invalid_document');
  });

  it('checks what a node returns', async () => {
    const r = new Registry();
    r.register(
      definePlugin({
        name: 'bad',
        version: '1',
        nodes: [
          defineNode({
            type: 'NoOut',
            version: 1,
            category: 'x',
            outputNode: true,
            inputs: {},
            outputs: [{ name: 'X', type: 'INT' }],
            execute: () => ({}) as { X: unknown },
          }),
        ],
      }),
    );
    const ex = new Executor(r, { host });
    const res = await ex.run(doc({ n: { type: 'bad.NoOut', inputs: {} } }), { promptId: 'x' });
    expect(res.error).toMatchObject({ nodeId: 'n', message: 'bad.NoOut did not return its output "X"' });
  });

  it('gives each node a fresh ctx per run, and survives a throwing event listener', async () => {
    const contexts: unknown[] = [];
    const r = new Registry();
    r.register(
      definePlugin({
        name: 'ctx',
        version: '1',
        nodes: [
          peekNode('Peek', (ctx) => {
            contexts.push(ctx);
            ctx.ui({ a: [1] });
            ctx.ui({ b: [2] });
            expect(ctx.document.nodes.p.type).toBe('ctx.Peek');
            expect(ctx.host).toBe(host);
          }),
        ],
      }),
    );
    const ex = new Executor(r, { host });
    const d = doc({ p: { type: 'ctx.Peek', inputs: {} } });
    const a = await ex.run(d, {
      promptId: 'a',
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    const b = await ex.run(d, { promptId: 'b' });
    expect(a.outputs).toEqual({ p: { a: [1], b: [2] } });
    expect(b.status).toBe('success');
    expect(contexts).toHaveLength(2);
    expect(contexts[0]).not.toBe(contexts[1]);
    expect((contexts[0] as { promptId: string }).promptId).toBe('a');
  });

  it("runs without building the parsed document's node dictionary; a node that reads it gets it", async () => {
    const seen: WorkflowDocument[] = [];
    const r = new Registry();
    const peek = (type: string, read: boolean) =>
      peekNode(type, (ctx) => {
        seen.push(ctx.document);
        if (read) expect(Object.keys(ctx.document.nodes)).toEqual(['a', 'b']);
      });
    r.register(definePlugin({ name: 'lazy', version: '1', nodes: [peek('Keep', false), peek('Read', true)] }));
    const ex = new Executor(r, { host });
    const keep = doc({ a: { type: 'lazy.Keep', inputs: {} }, b: { type: 'lazy.Keep', inputs: {} } });
    expect((await ex.run(keep, { promptId: 'k', outputs: ['b', 'a'] })).status).toBe('success');
    expect((await ex.run(keep, { promptId: 'k2' })).status).toBe('success');
    const read = doc({ a: { type: 'lazy.Read', inputs: {} }, b: { type: 'lazy.Keep', inputs: {} } });
    expect((await ex.run(read, { promptId: 'r' })).status).toBe('success');
    expect(seen).toHaveLength(6);
    // the two runs of `keep` never built it (a hot path reading doc.nodes would)
    for (const d of seen.slice(0, 4)) expect(Object.getOwnPropertyDescriptor(d, 'nodes')?.get).toBeDefined();
    expect(Object.getOwnPropertyDescriptor(seen[4], 'nodes')?.value).toBeDefined();
    expect(seen[0].nodes.b).toEqual({ type: 'lazy.Keep', version: 1, mode: 'normal', inputs: {} });
    expect(seen[0].nodes.b).not.toBe(keep.nodes.b);
  });

  it('bounds the cache by bytes, least recently used first out', async () => {
    const ex = new Executor(registry, { host, cacheBytes: 10_000 });
    const big = (seed: number) => doc({ g: { type: 'test.Big', inputs: { n: 1000, seed } } }); // 4,000 bytes of Float32Array each
    for (const seed of [1, 2]) await run(ex, big(seed), { outputs: ['g'] });
    expect(ex.cacheInfo().entries).toBe(2);
    expect((await run(ex, big(1), { outputs: ['g'] })).ran).toEqual([]); // 1 is now most recent
    await run(ex, big(3), { outputs: ['g'] }); // evicts 2
    expect(ex.cacheInfo().bytes).toBeLessThanOrEqual(10_000);
    expect((await run(ex, big(1), { outputs: ['g'] })).ran).toEqual([]);
    expect((await run(ex, big(2), { outputs: ['g'] })).ran).toEqual(['g']);
    // A value larger than the whole bound is used but not kept.
    const huge = doc({ g: { type: 'test.Big', inputs: { n: 5000, seed: 9 } } });
    await run(ex, huge, { outputs: ['g'] });
    expect((await run(ex, huge, { outputs: ['g'] })).ran).toEqual(['g']);
  });

  it('estimates sizes: typed arrays, the sizeOf symbol, walked objects, shared references once', () => {
    expect(estimateSize(new Float32Array(1000))).toBeGreaterThanOrEqual(4000);
    expect(estimateSize({ [sizeOf]: 123456 })).toBe(123456);
    expect(estimateSize({ [sizeOf]: () => 77 })).toBe(77);
    const shared = new Uint8Array(10_000);
    const twice = estimateSize({ a: shared, b: shared });
    expect(twice).toBeLessThan(11_000);
    expect(estimateSize({ s: 'x'.repeat(1000) })).toBeGreaterThan(2000);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(estimateSize(cyclic)).toBeGreaterThan(0);
  });

  it('runs migrated nodes with upgraded inputs', async () => {
    const ex = new Executor(registry, { host });
    const d = doc({
      t: { type: 'test.Text', version: 1, inputs: { prompt: 'hello', sampler: 'euler', weight: 100 } },
      s: { type: 'test.ShowString', inputs: { s: link('t', 'STRING') } },
    });
    const { result } = await run(ex, d);
    expect(result.outputs).toEqual({ s: { text: ['hello'] } });
  });

  // --- Properties over random DAGs

  it('random DAGs: each node runs at most once, results match the reference, re-run runs nothing', async () => {
    await fc.assert(
      fc.asyncProperty(dagSpec(16), async (spec) => {
        const ex = new Executor(registry, { host });
        const d = dagDocument(spec);
        const first = await run(ex, d);
        expect(first.result.status).toBe('success');
        // callsIn counts per node; every count must be exactly 1
        for (const id of first.ran) expect(first.result.executed.filter((x) => x === id)).toHaveLength(1);
        expect(new Set(first.result.executed).size).toBe(first.result.executed.length);
        expect(new Set(first.ran)).toEqual(neededIds(spec));
        const ref = referenceValues(spec);
        for (const s of spec.shown) expect(first.result.outputs[`s${s}`]).toEqual({ text: [String(ref[s])] });
        const second = await run(ex, d);
        expect(second.ran).toEqual([]);
        expect(second.result.executed).toEqual([]);
        expect(second.result.outputs).toEqual(first.result.outputs);
      }),
      { numRuns: 150 },
    );
  });

  it('random DAGs: changing one widget re-runs exactly its needed descendants', async () => {
    await fc.assert(
      fc.asyncProperty(dagSpec(16), fc.nat(), async (spec, pick) => {
        const ex = new Executor(registry, { host });
        await run(ex, dagDocument(spec));
        const i = pick % spec.links.length;
        const changed = { ...spec, values: spec.values.map((v, j) => (j === i ? v + 1000 : v)) };
        const { result, ran } = await run(ex, dagDocument(changed));
        const need = neededIds(spec);
        const expected = [...descendantIds(spec, i)].filter((id) => need.has(id)).sort();
        expect(ran).toEqual(expected);
        expect(result.status).toBe('success');
        const ref = referenceValues(changed);
        for (const s of spec.shown) expect(result.outputs[`s${s}`]).toEqual({ text: [String(ref[s])] });
      }),
      { numRuns: 150 },
    );
  });
});

describe('Executor and migrated links', () => {
  // v1 called the socket `src`; v2 renamed it `value`: the run must follow the migrated inputs' links.
  const Renamed = defineNode({
    type: 'Renamed',
    version: 2,
    category: 'test',
    inputs: { value: { kind: 'socket', type: 'INT' }, add: { kind: 'int', default: 0 } },
    outputs: [{ name: 'N', type: 'INT' }],
    migrations: { 1: ({ src, ...rest }) => ({ ...rest, value: src }) },
    execute: ({ value, add }) => ({ N: (value as number) + add }),
  });
  const reg = new Registry();
  reg.register(testPlugin);
  reg.register(definePlugin({ name: 'mig', version: '1', nodes: [Renamed] }));
  const graph = (value: number) =>
    doc({
      a: { type: 'test.Num', inputs: { value } },
      r: { type: 'mig.Renamed', version: 1, inputs: { src: link('a', 'N'), add: 10 } },
      show: { type: 'test.Show', inputs: { value: link('r', 'N') } },
    });

  for (const validate of [true, false]) {
    it(`a node saved with an older version gets its source's value through the renamed input (validate: ${validate})`, async () => {
      const ex = new Executor(reg, { host });
      const first = await ex.run(graph(5), { promptId: pid('mig'), validate });
      expect(first.status).toBe('success');
      expect(first.outputs.show).toEqual({ text: ['15'] });
      const again = await ex.run(graph(5), { promptId: pid('mig'), validate });
      expect(again.executed).toEqual([]);
      // the migrated link is part of the signature: a new source value re-runs the node
      const changed = await ex.run(graph(6), { promptId: pid('mig'), validate });
      expect(changed.executed.sort()).toEqual(['a', 'r', 'show']);
      expect(changed.outputs.show).toEqual({ text: ['16'] });
    });
  }
});

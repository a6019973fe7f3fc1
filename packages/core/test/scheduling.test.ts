/** Scheduling on its own: dependency order, independent async branches together, the first failure
 *  stops the run, cancellation names the running node. */
import { describe, expect, it } from 'vitest';
import type { ExecutionEvent } from '../src/events.js';
import { planRun } from '../src/planning.js';
import { Registry } from '../src/registry.js';
import { type ScheduleInput, schedule } from '../src/scheduling.js';
import type { WorkflowDocument } from '../src/schema.js';
import { host, testPlugin } from './fixtures.js';

const registry = new Registry();
registry.register(testPlugin);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

function run(nodes: WorkflowDocument['nodes'], targets: string[], extra: Partial<ScheduleInput> = {}) {
  const doc: WorkflowDocument = { format: 'priorgraph', version: 1, nodes };
  const plan = planRun(doc, registry, targets);
  const events: ExecutionEvent[] = [];
  const done: string[] = [];
  const values: ScheduleInput['values'] = [];
  const result = schedule({
    plan,
    toRun: plan.planned.map((p) => p.index),
    values,
    uiOutputs: {},
    doc,
    promptId: `sched-${Math.random()}`,
    host,
    log: silent,
    emit: (e) => events.push(e),
    listening: true,
    onDone: (p) => done.push(p.id),
    ...extra,
  });
  /** a node's outputs, by id */
  const outputsOf = (id: string) => values[plan.indexOf(id)];
  return { result, events, done, outputsOf };
}
type Inputs = WorkflowDocument['nodes'][string]['inputs'];
const n = (type: string, inputs: Inputs) => ({ type, version: 1, mode: 'normal' as const, inputs });
const link = (node: string, output: string) => ({ node, output });

describe('schedule', () => {
  it('runs sources first, hands values along, reports node_start and outputs', async () => {
    const r = run(
      {
        a: n('test.Num', { value: 2 }),
        b: n('test.Add', { a: link('a', 'N'), b: link('a', 'N') }),
        s: n('test.Show', { value: link('b', 'SUM') }),
      },
      ['s'],
    );
    const res = await r.result;
    expect(res.executed).toEqual(['a', 'b', 's']);
    expect(r.outputsOf('b')).toEqual({ SUM: 4 });
    expect(r.done).toEqual(['a', 'b', 's']);
    expect(r.events.filter((e) => e.type === 'node_start').map((e) => (e as { nodeId: string }).nodeId)).toEqual([
      'a',
      'b',
      's',
    ]);
    expect(r.events.at(-1)).toMatchObject({ type: 'node_output', nodeId: 's', ui: { text: ['4'] } });
  });

  it('independent async branches are in flight together', async () => {
    const r = run(
      {
        a: n('test.Num', { value: 1 }),
        x: n('test.Sleep', { value: link('a', 'N'), ms: 30 }),
        y: n('test.Sleep', { value: link('a', 'N'), ms: 30 }),
        s: n('test.Add', { a: link('x', 'N'), b: link('y', 'N') }),
      },
      ['s'],
    );
    await r.result;
    const starts = r.events.filter((e) => e.type === 'node_start').map((e) => (e as { nodeId: string }).nodeId);
    // y starts before x has finished: both are started before any progress of x arrives
    const firstProgress = r.events.findIndex((e) => e.type === 'progress');
    const yStart = r.events.findIndex((e) => e.type === 'node_start' && e.nodeId === 'y');
    expect(starts).toEqual(['a', 'x', 'y', 's']);
    expect(yStart).toBeLessThan(firstProgress);
  });

  it('the first failure stops the run and is reported with the node and its inputs', async () => {
    const r = run({ f: n('test.Fail', { how: 'error' }), s: n('test.Show', { value: link('f', 'N') }) }, ['s']);
    const res = await r.result;
    expect(res.failure).toMatchObject({ nodeId: 'f', nodeType: 'test.Fail', errorType: 'RangeError' });
    expect(res.executed).toEqual([]);
    expect(r.events.find((e) => e.type === 'error')).toMatchObject({ nodeId: 'f', inputs: { how: 'error' } });
  });

  it('a literal the input-spec table refuses fails its node (unvalidated runs), without throwing', async () => {
    const r = run({ g: n('test.Big', { n: 10, seed: 'not a seed' }) }, ['g']);
    const res = await r.result;
    expect(res.failure).toMatchObject({ nodeId: 'g', message: expect.stringContaining('seed') });
  });

  it('cancellation stops within the running node and names it', async () => {
    const ac = new AbortController();
    const r = run(
      { a: n('test.Num', { value: 1 }), z: n('test.Sleep', { value: link('a', 'N'), ms: 20, steps: 100 }) },
      ['z'],
      { signal: ac.signal, emit: (e) => e.type === 'progress' && ac.abort() },
    );
    const res = await r.result;
    expect(res.interrupted).toEqual({ nodeId: 'z' });
    expect(res.executed).toEqual(['a']);
  });
});

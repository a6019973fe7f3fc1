/** Planning on its own: what the outputs need, in dependency order; unknown types and cycles named. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PlanningError, planRun } from '../src/planning.js';
import { Registry } from '../src/registry.js';
import type { WorkflowDocument } from '../src/schema.js';
import { testPlugin } from './fixtures.js';
import { dagDocument, dagSpec, neededIds } from './graphs.js';

const registry = new Registry();
registry.register(testPlugin);
type Node = WorkflowDocument['nodes'][string];
const node = (type: string, mode: Node['mode'], inputs: Node['inputs']): Node => ({ type, version: 1, mode, inputs });
const docOf = (nodes: WorkflowDocument['nodes']): WorkflowDocument => ({ format: 'priorgraph', version: 1, nodes });
const targetsOf = (doc: WorkflowDocument) => Object.keys(doc.nodes).filter((id) => id.startsWith('s'));

describe('planRun', () => {
  it('random DAGs: plans exactly what the outputs need, each node after its sources', () => {
    fc.assert(
      fc.property(dagSpec(), (spec) => {
        const doc = dagDocument(spec);
        const plan = planRun(doc, registry, targetsOf(doc));
        expect(new Set(plan.order)).toEqual(neededIds(spec));
        expect(plan.order.length).toBe(plan.nodes.size);
        const pos = new Map(plan.order.map((id, i) => [id, i]));
        for (const p of plan.nodes.values()) for (const d of p.deps) expect(pos.get(d)!).toBeLessThan(pos.get(p.id)!);
      }),
    );
  });

  it('a muted source is no dependency; a bypassed node is planned in bypass mode', () => {
    const doc = docOf({
      a: node('test.Num', 'muted', { value: 1 }),
      b: node('test.Add', 'bypass', { a: { node: 'a', output: 'N' } }),
      s: node('test.Show', 'normal', { value: { node: 'b', output: 'SUM' } }),
    });
    const plan = planRun(doc, registry, ['s']);
    expect(plan.order).toEqual(['b', 's']);
    expect(plan.nodes.get('b')).toMatchObject({ mode: 'bypass', deps: [] });
  });

  it('names the node of an unknown type and of a cycle', () => {
    const doc = (nodes: WorkflowDocument['nodes']): WorkflowDocument => ({ format: 'priorgraph', version: 1, nodes });
    const link = (node: string) => ({ node, output: 'SUM' });
    expect(() =>
      planRun(doc({ x: { type: 'Nope', version: 1, mode: 'normal', inputs: {} } }), registry, ['x']),
    ).toThrow(expect.objectContaining({ nodeId: 'x', nodeType: 'Nope' }));
    const cyclic = docOf({
      p: node('test.Add', 'normal', { a: link('q') }),
      q: node('test.Add', 'normal', { a: link('p') }),
    });
    let err: unknown;
    try {
      planRun(cyclic, registry, ['p']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanningError);
    expect((err as PlanningError).message).toMatch(/dependency cycle through node (p|q)/);
  });
});

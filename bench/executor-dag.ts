/**
 * The executor benches' graphs: DAGs of trivial nodes (sync or async bodies) ending in one sink,
 * and the registry and host they run with. Shared by executor.bench.ts and executor-gc.bench.ts.
 */
import os from 'node:os';
import {
  defineNode,
  definePlugin,
  type HostInfo,
  type NodeDefinition,
  Registry,
  type WorkflowDocument,
} from '../packages/core/src/index.js';

export const host: HostInfo = {
  modelRoots: [],
  outputDir: os.tmpdir(),
  inputDir: os.tmpdir(),
  tempDir: os.tmpdir(),
  config: {},
};

const inputs = {
  a: { kind: 'socket', type: 'INT', optional: true },
  b: { kind: 'socket', type: 'INT', optional: true },
  v: { kind: 'int', default: 0, min: -1_000_000, max: 1_000_000 },
} as const;
const outputs = [{ name: 'OUT', type: 'INT' }] as const;
type SumNode = NodeDefinition<typeof inputs, typeof outputs>;
/** A trivial node: OUT = a + b + v, its body sync or async. */
const sumNode = (type: string, execute: SumNode['execute']): SumNode =>
  defineNode({ type, version: 1, category: 'bench', inputs, outputs, execute });
const SyncNode = sumNode('SyncNode', ({ a, b, v }) => ({ OUT: ((a as number) ?? 0) + ((b as number) ?? 0) + v }));
const AsyncNode = sumNode('AsyncNode', async ({ a, b, v }) => ({
  OUT: ((a as number) ?? 0) + ((b as number) ?? 0) + v,
}));
const Sink = defineNode({
  type: 'Sink',
  version: 1,
  category: 'bench',
  outputNode: true,
  inputs: { x: { kind: 'socket', type: 'INT' } },
  outputs: [],
  execute: ({ x }, ctx) => {
    ctx.ui({ value: [x] });
    return {};
  },
});
export const registry = new Registry();
registry.register(definePlugin({ name: 'bench', version: '1', nodes: [SyncNode, AsyncNode, Sink] }));

/** A DAG: node i links to i−1 and to a pseudo-random earlier node (deterministic), so every node
 *  is needed by the single sink at the end. */
export function makeDag(n: number, type: string): WorkflowDocument {
  const doc: WorkflowDocument = { format: 'priorgraph', version: 1, nodes: {} };
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < n - 1; i++) {
    const node: Record<string, unknown> = { v: i % 7 };
    if (i > 0) node.a = { node: `n${i - 1}`, output: 'OUT' };
    if (i > 1) node.b = { node: `n${Math.floor(rand() * (i - 1))}`, output: 'OUT' };
    doc.nodes[`n${i}`] = { type, version: 1, mode: 'normal', inputs: node as never };
  }
  doc.nodes.sink = {
    type: 'bench.Sink',
    version: 1,
    mode: 'normal',
    inputs: { x: { node: `n${n - 2}`, output: 'OUT' } },
  };
  return doc;
}

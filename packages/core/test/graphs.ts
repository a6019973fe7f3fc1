/** Random workflow generators shared by the validator and executor property tests. */
import fc from 'fast-check';
import type { WorkflowDocument } from '../src/index.js';

export interface DagSpec {
  /** For node i: the earlier nodes its inputs x, y, z link to (may be fewer than 3). */
  links: number[][];
  values: number[];
  /** Indices of nodes that feed a Show output node. */
  shown: number[];
}

export const dagSpec = (maxNodes = 14): fc.Arbitrary<DagSpec> =>
  fc.integer({ min: 1, max: maxNodes }).chain((n) =>
    fc.record({
      links: fc.tuple(
        ...Array.from({ length: n }, (_, i) =>
          i === 0 ? fc.constant([] as number[]) : fc.uniqueArray(fc.nat(i - 1), { maxLength: Math.min(3, i) }),
        ),
      ),
      values: fc.array(fc.integer({ min: -100, max: 100 }), { minLength: n, maxLength: n }),
      shown: fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: Math.min(3, n) }),
    }),
  );

/** Mix nodes `m<i>` and Show nodes `s<i>` for each shown node. */
export function dagDocument(spec: DagSpec): WorkflowDocument {
  const doc: WorkflowDocument = { format: 'priorgraph', version: 1, nodes: {} };
  spec.links.forEach((deps, i) => {
    const inputs: Record<string, unknown> = { v: spec.values[i] };
    deps.forEach((d, k) => {
      inputs[['x', 'y', 'z'][k]] = { node: `m${d}`, output: 'OUT' };
    });
    doc.nodes[`m${i}`] = { type: 'test.Mix', version: 1, mode: 'normal', inputs: inputs as never };
  });
  for (const s of spec.shown) {
    doc.nodes[`s${s}`] = {
      type: 'test.Show',
      version: 1,
      mode: 'normal',
      inputs: { value: { node: `m${s}`, output: 'OUT' } },
    };
  }
  return doc;
}

/** The value each Mix node computes (reference implementation of the graph's meaning). */
export function referenceValues(spec: DagSpec): number[] {
  const out: number[] = [];
  spec.links.forEach((deps, i) => {
    out[i] = spec.values[i] + deps.reduce((acc, d) => acc + out[d], 0);
  });
  return out;
}

/** Node ids (Mix and Show) that the Show outputs need. */
export function neededIds(spec: DagSpec): Set<string> {
  const need = new Set<string>();
  const stack = [...spec.shown];
  for (const s of spec.shown) need.add(`s${s}`);
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (need.has(`m${i}`)) continue;
    need.add(`m${i}`);
    stack.push(...spec.links[i]);
  }
  return need;
}

/** Node ids (Mix and Show) downstream of Mix node `i`, including it. */
export function descendantIds(spec: DagSpec, i: number): Set<string> {
  const desc = new Set<number>([i]);
  for (let j = i + 1; j < spec.links.length; j++) if (spec.links[j].some((d) => desc.has(d))) desc.add(j);
  const ids = new Set([...desc].map((j) => `m${j}`));
  for (const s of spec.shown) if (desc.has(s)) ids.add(`s${s}`);
  return ids;
}

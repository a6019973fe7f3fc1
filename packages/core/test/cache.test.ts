/** Caching on its own: signatures change exactly with a node's ancestry; the LRU serves and evicts. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateSize, lookupPlan, OutputCache, signPlan, stableStringify } from '../src/cache.js';
import { planRun } from '../src/planning.js';
import { Registry } from '../src/registry.js';
import type { WorkflowDocument } from '../src/schema.js';
import { testPlugin } from './fixtures.js';
import { dagDocument, dagSpec, descendantIds } from './graphs.js';

const registry = new Registry();
registry.register(testPlugin);

function signed(spec: Parameters<typeof dagDocument>[0]) {
  const doc = dagDocument(spec);
  const plan = planRun(
    doc,
    registry,
    Object.keys(doc.nodes).filter((id) => id.startsWith('s')),
  );
  signPlan(plan, 'run');
  return plan;
}

describe('signatures', () => {
  it('changing one widget changes the signatures of exactly that node and its descendants', () => {
    fc.assert(
      fc.property(
        dagSpec().chain((spec) => fc.tuple(fc.constant(spec), fc.nat(spec.values.length - 1))),
        ([spec, i]) => {
          const before = signed(spec);
          const values = spec.values.slice();
          values[i] += 1;
          const after = signed({ ...spec, values });
          const changed = new Set(
            [...before.nodes.keys()].filter((id) => before.nodes.get(id)!.sig !== after.nodes.get(id)!.sig),
          );
          const expected = new Set([...descendantIds(spec, i)].filter((id) => before.nodes.has(id)));
          expect(changed).toEqual(expected);
        },
      ),
    );
  });

  it('a seed given as a number and as a decimal string is one seed, one signature', () => {
    const sig = (seed: unknown) => {
      const doc: WorkflowDocument = {
        format: 'priorgraph',
        version: 1,
        nodes: { g: { type: 'test.Big', version: 1, mode: 'normal' as const, inputs: { n: 10, seed: seed as never } } },
      };
      const plan = planRun(doc, registry, ['g']);
      signPlan(plan, 'run');
      return plan.nodes.get('g')!.sig;
    };
    expect(sig(5)).toBe(sig('5'));
    expect(sig('18446744073709551615')).not.toBe(sig('18446744073709551614'));
  });

  it('canonical JSON sorts keys and writes bigints apart from numbers', () => {
    expect(stableStringify({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(stableStringify(5n)).not.toBe(stableStringify(5));
  });
});

describe('lookupPlan and the LRU', () => {
  it('a cached node is served and its sources are not needed', () => {
    const plan = signed({ links: [[], [0]], values: [1, 2], shown: [1] });
    const cache = new OutputCache(1 << 20);
    cache.set(plan.nodes.get('m1')!.sig, { OUT: 3 }, undefined);
    const r = lookupPlan(plan, ['s1'], cache);
    expect(r.cached).toEqual(['m1']);
    expect(r.toRun.map((i) => plan.planned[i].id)).toEqual(['s1']);
    expect(r.values[plan.indexOf('m1')]).toEqual({ OUT: 3 });
  });

  it('evicts least recently used entries over the byte bound; refuses one larger than the bound', () => {
    const cache = new OutputCache(3000);
    const big = () => ({ a: new Float32Array(250) }); // ≈ 1,000 bytes with overhead
    cache.set('x', big(), undefined);
    cache.set('y', big(), undefined);
    cache.get('x'); // x is now the most recent
    cache.set('z', big(), undefined);
    expect(cache.has('x') && cache.has('z')).toBe(true);
    expect(cache.has('y')).toBe(false);
    expect(cache.set('huge', { a: new Float32Array(1000) }, undefined)).toBe(false);
    expect(cache.bytes).toBeLessThanOrEqual(3000);
  });

  it('random uses: the same entries as one least-recently-used list (keys on one shard and on many)', () => {
    // The reference: one Map in recency order, the oldest dropped first while over the bound.
    const op = fc.record({
      get: fc.boolean(),
      // first characters 'A', 'Q' and 'a' share a shard (65, 81, 97 ≡ 1 mod 16); 'B', 'x' do not
      key: fc.constantFrom('A1', 'Q1', 'a1', 'A2', 'B1', 'x1', 'x2', ''),
      floats: fc.integer({ min: 0, max: 400 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const cache = new OutputCache(4000);
        const ref = new Map<string, number>();
        let refBytes = 0;
        for (const o of ops) {
          if (o.get) {
            const e = cache.get(o.key);
            expect(e !== undefined).toBe(ref.has(o.key));
            if (e) {
              ref.delete(o.key);
              ref.set(o.key, e.bytes);
            }
            continue;
          }
          const outputs = { a: new Float32Array(o.floats) };
          const bytes = estimateSize(outputs);
          cache.set(o.key, outputs, undefined);
          if (ref.has(o.key)) refBytes -= ref.get(o.key)!;
          ref.delete(o.key);
          if (bytes > 4000) continue;
          ref.set(o.key, bytes);
          refBytes += bytes;
          for (const [k, b] of ref) {
            if (refBytes <= 4000) break;
            ref.delete(k);
            refBytes -= b;
          }
        }
        expect(cache.size).toBe(ref.size);
        expect(cache.bytes).toBe(refBytes);
        for (const k of ref.keys()) expect(cache.has(k)).toBe(true);
      }),
      { seed: 20261203, numRuns: 300 },
    );
  });
});

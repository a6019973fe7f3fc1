/** The input-spec table: the seed's one range (ComfyUI's 0 … 2^64 − 1, exactly), exact JSON parsing
 *  of large integers, and the same answer from validation, the JSON Schema and /object_info. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonExact, parseSeed, SEED_MAX, seedValue, WIDGET_KINDS } from '../src/inputs.ts';
import { Registry } from '../src/registry.ts';
import { validateWorkflow } from '../src/validate.ts';
import { host, testPlugin } from './fixtures.ts';

const seedSpec = { kind: 'seed', default: 0 } as const;
const u64 = fc.bigInt({ min: 0n, max: SEED_MAX });

describe('seeds: 0 … 2^64 − 1, exactly', () => {
  it('every value in range round-trips as a decimal string, and as a number where JSON is exact', () => {
    fc.assert(
      fc.property(u64, (s) => {
        expect(parseSeed(s.toString())).toEqual({ seed: s });
        expect(parseSeed(s)).toEqual({ seed: s });
        if (s <= BigInt(Number.MAX_SAFE_INTEGER)) {
          expect(parseSeed(Number(s))).toEqual({ seed: s });
          expect(seedValue(s.toString())).toBe(Number(s));
        } else expect(seedValue(s.toString())).toBe(s);
      }),
    );
  });

  it('the ends and just outside them', () => {
    expect(parseSeed('18446744073709551615')).toEqual({ seed: 2n ** 64n - 1n });
    expect(parseSeed('18446744073709551616')).toMatchObject({ kind: 'max' });
    expect(parseSeed(-1)).toMatchObject({ kind: 'min' });
    expect(parseSeed('-1')).toMatchObject({ kind: 'type' });
    expect(parseSeed(1.5)).toMatchObject({ kind: 'type' });
    expect(parseSeed('01')).toMatchObject({ kind: 'type' });
    // a number above 2^53 − 1 has lost its digits on the way: refused with the way out named
    expect(parseSeed(2 ** 60)).toMatchObject({ kind: 'type', error: expect.stringContaining('decimal string') });
  });

  it('parseJsonExact keeps integers above 2^53 − 1 exact (as decimal strings), the rest as JSON.parse', () => {
    fc.assert(
      fc.property(u64, fc.string(), fc.double({ noNaN: true, noDefaultInfinity: true }), (s, str, d) => {
        const text = JSON.stringify({ seed: 0, str, d, a: [1, -2] }).replace('"seed":0', `"seed":${s}`);
        const exact = BigInt(Number(s)) === s && Number.isSafeInteger(Number(s));
        expect(parseJsonExact(text)).toEqual({ seed: exact ? Number(s) : s.toString(), str, d, a: [1, -2] });
      }),
    );
    expect(parseJsonExact('{"s":"12345678901234567890","n":12345678901234567890}')).toEqual({
      s: '12345678901234567890',
      n: '12345678901234567890',
    });
  });

  it('validation, the JSON Schema and /object_info read the same range', async () => {
    const zod = WIDGET_KINDS.seed.zod(seedSpec);
    for (const v of [0, 2 ** 53 - 1, '18446744073709551615']) {
      expect(WIDGET_KINDS.seed.check(seedSpec, v)).toBeNull();
      expect(zod.safeParse(v).success).toBe(true);
    }
    for (const v of [-1, 1.5, 'x']) {
      expect(WIDGET_KINDS.seed.check(seedSpec, v)).not.toBeNull();
      expect(zod.safeParse(v).success).toBe(false);
    }
    const reg = new Registry();
    reg.register(testPlugin);
    const errors = async (seed: unknown) => {
      const doc = { format: 'priorgraph', version: 1, nodes: { g: { type: 'test.Big', inputs: { n: 10, seed } } } };
      const r = await validateWorkflow(doc, reg, host);
      return (r.node_errors.g?.errors ?? []).map((e) => e.type);
    };
    expect(await errors('18446744073709551615')).toEqual([]);
    expect(await errors('18446744073709551616')).toEqual(['value_bigger_than_max']);
    expect(await errors(2 ** 60)).toEqual(['invalid_input_type']);
    const info = await reg.objectInfo(host);
    expect(info['test.Big'].input.required.seed[1]).toMatchObject({ min: 0, max: Number(SEED_MAX) });
  });
});

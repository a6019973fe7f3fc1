/**
 * The input-spec table: for each widget kind, its ComfyUI type name, its range, what /object_info
 * says about it, its JSON Schema, how a document's value is checked, and the value `execute` receives.
 * Validation (validate.ts), the node schema and /object_info (registry.ts), the executor and the
 * editor (through /object_info) all read it; the seed's range is here and nowhere else.
 *
 * Seeds: ComfyUI's full range, 0 … 2^64 − 1, exactly. JSON numbers are exact only up to 2^53 − 1, so
 * a larger seed travels as a decimal string ("18446744073709551615"), or as a bigint in process;
 * `parseJsonExact` turns larger integer literals of a JSON text into such strings. `execute` gets a
 * number up to 2^53 − 1 and a bigint above.
 */
import { z } from 'zod';
import type { FloatInput, InputSpec, IntInput, WidgetInput } from './api.js';

/** The seed range, inclusive. */
export const SEED_MIN = 0n;
export const SEED_MAX = 2n ** 64n - 1n;

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** A seed from a document value: a safe integer, a decimal string or a bigint in [0, 2^64 − 1];
 *  otherwise a message saying what is wrong. */
export function parseSeed(v: unknown): { seed: bigint } | { error: string; kind: 'type' | 'min' | 'max' } {
  let s: bigint;
  if (typeof v === 'bigint') s = v;
  else if (typeof v === 'string' && DECIMAL.test(v)) s = BigInt(v);
  else if (typeof v === 'number' && Number.isSafeInteger(v)) s = BigInt(v);
  else if (typeof v === 'number' && Number.isInteger(v) && v > 0) {
    return {
      kind: 'type',
      error: `${v} is above 2^53 − 1 and lost its exact value as a JSON number: send a seed above 2^53 − 1 as a decimal string`,
    };
  } else return { kind: 'type', error: 'an integer (a number, or a decimal string above 2^53 − 1)' };
  if (s < SEED_MIN) return { kind: 'min', error: `${s} smaller than min of ${SEED_MIN}` };
  if (s > SEED_MAX) return { kind: 'max', error: `${s} bigger than max of ${SEED_MAX}` };
  return { seed: s };
}

/** The value a node's `execute` receives for a valid seed: a number where exact, else a bigint. */
export function seedValue(v: unknown): number | bigint {
  const r = parseSeed(v);
  if ('error' in r) throw new Error(`seed: ${r.error}`);
  return r.seed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(r.seed) : r.seed;
}

/** JSON.parse, except that integer literals beyond 2^53 − 1 become decimal strings (exact) instead of
 *  rounded numbers. Strings and other numbers are as JSON.parse gives them. */
export function parseJsonExact(text: string): unknown {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (ch !== '-' && (ch < '0' || ch > '9')) continue;
    let j = i + 1;
    while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
    const tok = text.slice(i, j);
    if (/^-?[0-9]{16,}$/.test(tok) && !Number.isSafeInteger(Number(tok))) {
      out += `${text.slice(last, i)}"${tok}"`;
      last = j;
    }
    i = j - 1;
  }
  return JSON.parse(out + text.slice(last));
}

/** The range of a numeric widget: the seed's, or the spec's own bounds. */
export function widgetRange(spec: WidgetInput): { min?: number; max?: number } {
  if (spec.kind === 'seed') return { min: Number(SEED_MIN), max: Number(SEED_MAX) };
  if (spec.kind === 'int' || spec.kind === 'float') return { min: spec.min, max: spec.max };
  return {};
}

/** What a document value fails on: 'type' (invalid_input_type), 'min' or 'max' (out of range). */
export type WidgetProblem = { kind: 'type' | 'min' | 'max'; error: string };

interface KindEntry {
  /** the ComfyUI type name in /object_info and link checks */
  comfyType: string;
  /** a non-combo value's problem, or null (combos are checked against their options by validate.ts) */
  check(spec: WidgetInput, v: unknown): WidgetProblem | null;
  /** the JSON Schema of a literal value (without the default) */
  zod(spec: WidgetInput): z.ZodType;
}

function checkNumber(spec: WidgetInput, v: unknown, isInt: boolean): WidgetProblem | null {
  if (typeof v !== 'number' || !Number.isFinite(v) || (isInt && !Number.isInteger(v))) {
    return { kind: 'type', error: isInt ? 'an integer' : 'a finite number' };
  }
  const { min, max } = spec as IntInput | FloatInput; // only int and float specs are checked here
  if (min !== undefined && v < min) return { kind: 'min', error: `${v} smaller than min of ${min}` };
  if (max !== undefined && v > max) return { kind: 'max', error: `${v} bigger than max of ${max}` };
  return null;
}

function numberZod(spec: WidgetInput, isInt: boolean): z.ZodType {
  let n = isInt ? z.number().int() : z.number();
  const { min, max } = widgetRange(spec);
  if (min !== undefined) n = n.min(min);
  if (max !== undefined) n = n.max(max);
  return n;
}

const typeOnly = (ok: (v: unknown) => boolean, what: string) => (_: WidgetInput, v: unknown) =>
  ok(v) ? null : { kind: 'type' as const, error: what };

/** The table. */
export const WIDGET_KINDS: Record<WidgetInput['kind'], KindEntry> = {
  int: { comfyType: 'INT', check: (s, v) => checkNumber(s, v, true), zod: (s) => numberZod(s, true) },
  float: { comfyType: 'FLOAT', check: (s, v) => checkNumber(s, v, false), zod: (s) => numberZod(s, false) },
  seed: {
    comfyType: 'INT',
    check(_, v) {
      const r = parseSeed(v);
      return 'error' in r ? { kind: r.kind, error: r.error } : null;
    },
    zod: () =>
      z.union([
        z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        z.string().regex(DECIMAL).describe('a seed above 2^53 − 1, up to 18446744073709551615, as a decimal string'),
      ]),
  },
  string: { comfyType: 'STRING', check: typeOnly((v) => typeof v === 'string', 'a string'), zod: () => z.string() },
  boolean: {
    comfyType: 'BOOLEAN',
    check: typeOnly((v) => typeof v === 'boolean', 'a boolean'),
    zod: () => z.boolean(),
  },
  combo: {
    comfyType: 'COMBO',
    check: typeOnly((v) => typeof v === 'string', 'a string (one of the options)'),
    zod: (s) => {
      const o = s.kind === 'combo' && Array.isArray(s.options) ? (s.options as string[]) : [];
      return o.length > 0 ? z.enum(o as [string, ...string[]]) : z.string();
    },
  },
};

/** The ComfyUI type name an input is exposed as (a socket: its type; SEED is sent as INT). */
export function widgetTypeName(spec: InputSpec): string {
  return spec.kind === 'socket' ? spec.type : WIDGET_KINDS[spec.kind].comfyType;
}

/** The value `execute` receives for a widget's literal (seeds: number or bigint; others as given). */
export function widgetValue(spec: InputSpec, v: unknown): unknown {
  return spec.kind === 'seed' && v !== undefined ? seedValue(v) : v;
}

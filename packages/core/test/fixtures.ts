/** Real node definitions used across the core tests (small, pure, observable). */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineNode, definePlugin, type HostInfo, sizeOf } from '../src/index.js';

export const host: HostInfo = {
  modelRoots: ['/models'],
  outputDir: '/tmp/pg-out',
  inputDir: '/tmp/pg-in',
  tempDir: '/tmp/pg-tmp',
  config: { samplers: ['euler', 'ddim'] },
};

/** Executions recorded per `${promptId}/${nodeId}`, so tests can count runs. */
export const calls = new Map<string, number>();
export function countCall(promptId: string, nodeId: string): void {
  const k = `${promptId}/${nodeId}`;
  calls.set(k, (calls.get(k) ?? 0) + 1);
}
export function callsIn(promptId: string): string[] {
  return [...calls.keys()].filter((k) => k.startsWith(`${promptId}/`)).map((k) => k.slice(promptId.length + 1));
}

export const Num = defineNode({
  type: 'Num',
  version: 1,
  category: 'test',
  inputs: { value: { kind: 'int', default: 0, min: -1000, max: 1000 } },
  outputs: [{ name: 'N', type: 'INT' }],
  execute: ({ value }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { N: value };
  },
});

export const Add = defineNode({
  type: 'Add',
  version: 1,
  category: 'test',
  inputs: {
    a: { kind: 'socket', type: 'INT' },
    b: { kind: 'socket', type: 'INT', optional: true },
  },
  outputs: [{ name: 'SUM', type: 'INT' }],
  execute: async ({ a, b }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { SUM: (a as number) + ((b as number | undefined) ?? 0) };
  },
});

/** Sum of up to three optional INT inputs plus its own widget; used by the random-DAG properties. */
export const Mix = defineNode({
  type: 'Mix',
  version: 1,
  category: 'test',
  inputs: {
    x: { kind: 'socket', type: 'INT', optional: true },
    y: { kind: 'socket', type: 'INT', optional: true },
    z: { kind: 'socket', type: 'INT', optional: true },
    v: { kind: 'int', default: 0 },
  },
  outputs: [{ name: 'OUT', type: 'INT' }],
  execute: ({ x, y, z, v }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { OUT: ((x as number) ?? 0) + ((y as number) ?? 0) + ((z as number) ?? 0) + v };
  },
});

/** Output node: shows its input as text. */
export const Show = defineNode({
  type: 'Show',
  version: 1,
  category: 'test',
  outputNode: true,
  inputs: { value: { kind: 'socket', type: 'INT' } },
  outputs: [],
  execute: ({ value }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    ctx.ui({ text: [String(value)] });
    return {};
  },
});

export const Sleep = defineNode({
  type: 'Sleep',
  version: 1,
  category: 'test',
  inputs: {
    value: { kind: 'socket', type: 'INT' },
    ms: { kind: 'int', default: 20, min: 0, max: 10_000 },
    steps: { kind: 'int', default: 1, min: 1, max: 1000 },
  },
  outputs: [{ name: 'N', type: 'INT' }],
  execute: async ({ value, ms, steps }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    for (let i = 0; i < steps; i++) {
      if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('aborted');
      await sleep(ms);
      ctx.progress(i + 1, steps);
    }
    return { N: value };
  },
});

export const Fail = defineNode({
  type: 'Fail',
  version: 1,
  category: 'test',
  inputs: {
    value: { kind: 'socket', type: 'INT', optional: true },
    how: { kind: 'combo', options: ['error', 'string', 'object', 'async', 'undefined'], default: 'error' },
  },
  outputs: [{ name: 'N', type: 'INT' }],
  execute: async ({ how }) => {
    if (how === 'error') throw new RangeError('boom from Fail');
    if (how === 'string') throw 'a plain string';
    if (how === 'object') throw { code: 42 };
    if (how === 'undefined') throw undefined;
    await sleep(1);
    return Promise.reject(new Error('async boom'));
  },
});

export const Clock = defineNode({
  type: 'Clock',
  version: 1,
  category: 'test',
  notIdempotent: true,
  inputs: {},
  outputs: [{ name: 'N', type: 'INT' }],
  execute: (_inputs, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { N: calls.size };
  },
});

export const Big = defineNode({
  type: 'Big',
  version: 1,
  category: 'test',
  inputs: { n: { kind: 'int', default: 1000, min: 1, max: 1_000_000 }, seed: { kind: 'seed', default: 0 } },
  outputs: [{ name: 'ARR', type: 'ARRAY' }],
  execute: ({ n, seed }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    const a = new Float32Array(n);
    a.fill(Number(seed));
    return { ARR: a };
  },
});

export const Declared = defineNode({
  type: 'Declared',
  version: 1,
  category: 'test',
  inputs: { bytes: { kind: 'int', default: 10 } },
  outputs: [{ name: 'BLOB', type: 'BLOB' }],
  execute: ({ bytes }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { BLOB: { [sizeOf]: bytes, id: ctx.nodeId } };
  },
});

export const Text = defineNode({
  type: 'Text',
  version: 3,
  category: 'test',
  displayName: 'Text Prompt',
  description: 'A text with a sampler name',
  inputs: {
    text: { kind: 'string', default: '', multiline: true, description: 'the prompt' },
    sampler: { kind: 'combo', options: (h: HostInfo) => h.config.samplers as string[], default: 'euler' },
    strength: { kind: 'float', default: 1, min: 0, max: 2, step: 0.05, round: 0.01 },
    enabled: { kind: 'boolean', default: true, optional: true },
    clip: { kind: 'socket', type: 'CLIP', optional: true },
  },
  outputs: [
    { name: 'STRING', type: 'STRING' },
    { name: 'LENGTH', type: 'INT' },
  ],
  // v1 had `prompt`; v2 renamed it to `text`; v3 added `strength` (v2 had a percent `weight`).
  migrations: {
    1: ({ prompt, ...rest }) => ({ ...rest, text: prompt }),
    2: ({ weight, ...rest }) => ({ ...rest, strength: typeof weight === 'number' ? weight / 100 : 1 }),
  },
  validate: (inputs) =>
    typeof inputs.text === 'string' && inputs.text.includes('forbidden')
      ? [{ input: 'text', message: 'the word "forbidden" is not allowed' }]
      : [],
  execute: ({ text }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    return { STRING: text, LENGTH: text.length };
  },
});

/** Shows a STRING; output node. */
export const ShowString = defineNode({
  type: 'ShowString',
  version: 1,
  category: 'test',
  outputNode: true,
  inputs: { s: { kind: 'socket', type: 'STRING' } },
  outputs: [],
  execute: ({ s }, ctx) => {
    countCall(ctx.promptId, ctx.nodeId);
    ctx.ui({ text: [s] });
    return {};
  },
});

export const testPlugin = definePlugin({
  name: 'test',
  version: '1.0.0',
  nodes: [Num, Add, Mix, Show, Sleep, Fail, Clock, Big, Declared, Text, ShowString],
});

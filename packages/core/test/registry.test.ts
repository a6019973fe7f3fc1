import { describe, expect, it } from 'vitest';
import { defineNode, definePlugin, Registry, RegistryError } from '../src/index.js';
import { host, Num, Text, testPlugin } from './fixtures.js';

describe('Registry', () => {
  it('qualifies node types by plugin and resolves unique bare names', () => {
    const r = new Registry();
    const reg = r.register(testPlugin, 'here');
    expect(reg.nodeTypes).toContain('test.Num');
    expect(r.get('test.Num')?.def).toBe(Num);
    expect(r.get('Num')?.qualifiedName).toBe('test.Num');
    expect(r.get('Nope')).toBeUndefined();
    expect(r.get('test.Nope')).toBeUndefined();
    expect(r.list().length).toBe(testPlugin.nodes.length);
    expect(r.plugins()[0]).toMatchObject({ name: 'test', version: '1.0.0', source: 'here' });
  });

  it('makes a bare name ambiguous when two plugins provide it', () => {
    const r = new Registry();
    r.register(testPlugin);
    r.register(definePlugin({ name: 'other', version: '1', nodes: [Num] }));
    expect(() => r.get('Num')).toThrow(RegistryError);
    expect(() => r.get('Num')).toThrow(/ambiguous.*other\.Num|ambiguous.*test\.Num/);
    const res = r.resolve('Num');
    expect(res).toMatchObject({ ok: false, reason: 'ambiguous', candidates: ['test.Num', 'other.Num'] });
    expect(r.get('other.Num')?.plugin).toBe('other');
    expect(r.get('Add')?.qualifiedName).toBe('test.Add');
  });

  it('refuses a plugin whose type already exists, atomically, and keeps the others', () => {
    const r = new Registry();
    r.register(testPlugin);
    expect(() => r.register(testPlugin, 'again')).toThrow(/already registered/);
    const dup = definePlugin({ name: 'dup', version: '1', nodes: [Num, Num] });
    expect(() => r.register(dup)).toThrow(/"dup.Num" already exists/);
    expect(r.get('dup.Num')).toBeUndefined();
    expect(r.plugins().map((p) => p.name)).toEqual(['test']);
  });

  it('rejects malformed plugins and node definitions with a reason', () => {
    const r = new Registry();
    expect(() => r.register(definePlugin({ name: 'Bad Name', version: '1', nodes: [] }))).toThrow(/must match/);
    const badType = { ...Num, type: 'has-dash' };
    expect(() => r.register(definePlugin({ name: 'p', version: '1', nodes: [badType] }))).toThrow(/has-dash/);
    const badKind = { ...Num, inputs: { x: { kind: 'tensor' } } };
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed
    expect(() => r.register(definePlugin({ name: 'p', version: '1', nodes: [badKind as any] }))).toThrow(
      /input "x" has an unknown kind/,
    );
    const noExec = { ...Num, execute: undefined };
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed
    expect(() => r.register(definePlugin({ name: 'p', version: '1', nodes: [noExec as any] }))).toThrow(/execute/);
    expect(r.list()).toEqual([]);
  });

  it('produces ComfyUI /object_info entries with the priorgraph extension', async () => {
    const r = new Registry();
    r.register(testPlugin);
    const info = await r.objectInfo(host);
    const text = info['test.Text'];
    expect(text).toMatchObject({
      name: 'test.Text',
      display_name: 'Text Prompt',
      description: 'A text with a sampler name',
      python_module: 'test',
      category: 'test',
      output_node: false,
      output: ['STRING', 'INT'],
      output_name: ['STRING', 'LENGTH'],
      output_is_list: [false, false],
      input_order: { required: ['text', 'sampler', 'strength'], optional: ['enabled', 'clip'] },
      priorgraph: {
        type: 'test.Text',
        version: 3,
        plugin: 'test',
        inputs: {
          text: { kind: 'STRING', optional: false },
          sampler: { kind: 'COMBO', optional: false },
          clip: { kind: 'SOCKET', type: 'CLIP', optional: true },
        },
      },
    });
    expect(text.input.required.text).toEqual(['STRING', { default: '', multiline: true, tooltip: 'the prompt' }]);
    // Dynamic combo options come from the host, in the legacy [[options], {default}] form.
    expect(text.input.required.sampler).toEqual([['euler', 'ddim'], { default: 'euler' }]);
    expect(text.input.required.strength).toEqual(['FLOAT', { default: 1, min: 0, max: 2, step: 0.05, round: 0.01 }]);
    expect(text.input.optional.enabled).toEqual(['BOOLEAN', { default: true }]);
    expect(text.input.optional.clip).toEqual(['CLIP', {}]);
    expect(info['test.Big'].input.required.seed).toEqual([
      'INT',
      { default: 0, min: 0, max: Number(2n ** 64n - 1n), control_after_generate: true },
    ]);
    expect(info['test.Show'].output_node).toBe(true);
    const other = await r.objectInfo({ ...host, config: { samplers: ['lms'] } });
    expect(other['test.Text'].input.required.sampler[0]).toEqual(['lms']);
  });

  it('survives a throwing dynamic combo resolver', async () => {
    const r = new Registry();
    const Broken = defineNode({
      type: 'Broken',
      version: 1,
      category: 'x',
      inputs: {
        c: {
          kind: 'combo',
          options: () => {
            throw new Error('disk gone');
          },
        },
      },
      outputs: [],
      execute: () => ({}),
    });
    r.register(definePlugin({ name: 'b', version: '1', nodes: [Broken] }));
    const warnings: string[] = [];
    const info = await r.objectInfo(host, { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} });
    expect(info['b.Broken'].input.required.c[0]).toEqual([]);
    expect(warnings[0]).toMatch(/disk gone/);
  });

  it('gives JSON Schemas of node inputs', () => {
    const r = new Registry();
    r.register(definePlugin({ name: 't', version: '1', nodes: [Text, Num] }));
    const s = r.jsonSchemas();
    const num = s['t.Num'] as {
      properties: Record<string, { anyOf: Array<Record<string, unknown>> }>;
      required: string[];
    };
    expect(num.required).toEqual(['value']);
    expect(num.properties.value.anyOf[0]).toMatchObject({ type: 'integer', minimum: -1000, maximum: 1000 });
    const text = s['t.Text'] as { required: string[] };
    expect(text.required).not.toContain('clip');
  });
});

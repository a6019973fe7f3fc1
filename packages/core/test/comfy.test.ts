import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ComfyFormatError,
  type ComfyPrompt,
  fromComfyPrompt,
  Registry,
  toComfyPrompt,
  type WorkflowDocument,
} from '../src/index.js';
import { testPlugin } from './fixtures.js';

const registry = new Registry();
registry.register(testPlugin);

const outputsByType: Record<string, string[]> = {};
for (const t of registry.list()) outputsByType[t.qualifiedName] = t.def.outputs.map((o: { name: string }) => o.name);
const knownTypes = Object.keys(outputsByType);
const unknownTypes = ['ext.Upscale', 'CheckpointLoaderSimple', 'other.Thing'];

describe('ComfyUI API format', () => {
  it('imports links by output name, list literals, titles and unknown types', () => {
    const prompt = {
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd15.safetensors' } },
      '5': { class_type: 'Text', inputs: { text: 'a cat', sampler: 'euler', strength: 1 }, _meta: { title: 'Prompt' } },
      '6': { class_type: 'test.Add', inputs: { a: ['7', 0], b: ['4', 2] } },
      '7': { class_type: 'Text', inputs: { text: 'x', sampler: 'ddim', strength: 0.5, clip: ['4', 1] } },
      '8': { class_type: 'Mix', inputs: { x: ['5', 1], v: { __value__: [1, 2, 3] } } },
    };
    const doc = fromComfyPrompt(prompt, registry);
    expect(doc.format).toBe('priorgraph');
    expect(doc.nodes['4']).toEqual({
      type: 'CheckpointLoaderSimple',
      version: 1,
      mode: 'normal',
      inputs: { ckpt_name: 'sd15.safetensors' },
    });
    expect(doc.nodes['5'].type).toBe('test.Text');
    expect(doc.nodes['5'].version).toBe(3);
    expect(doc.nodes['5'].title).toBe('Prompt');
    // Known source type: index → name. Unknown source type: kept as "#<index>".
    expect(doc.nodes['6'].inputs).toEqual({ a: { node: '7', output: 'STRING' }, b: { node: '4', output: '#2' } });
    expect(doc.nodes['7'].inputs.clip).toEqual({ node: '4', output: '#1' });
    expect(doc.nodes['8'].inputs).toEqual({ x: { node: '5', output: 'LENGTH' }, v: [1, 2, 3] });

    const back = toComfyPrompt(doc, registry);
    expect(back['6'].inputs).toEqual({ a: ['7', 0], b: ['4', 2] });
    expect(back['8'].inputs).toEqual({ x: ['5', 1], v: { __value__: [1, 2, 3] } });
    expect(back['5']._meta).toEqual({ title: 'Prompt' });
    expect(back['4']).toEqual(prompt['4']);
    expect(back['5'].class_type).toBe('test.Text');
  });

  it('carries node version and mode in _meta.priorgraph', () => {
    const doc: WorkflowDocument = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        a: { type: 'test.Text', version: 1, mode: 'muted', inputs: { prompt: 'old' } },
        b: { type: 'test.Num', version: 1, mode: 'bypass', inputs: { value: 1 } },
      },
    };
    const prompt = toComfyPrompt(doc, registry);
    expect(prompt.a._meta).toEqual({ priorgraph: { version: 1, mode: 'muted' } });
    expect(prompt.b._meta).toEqual({ priorgraph: { mode: 'bypass' } });
    expect(fromComfyPrompt(prompt, registry)).toEqual(doc);
  });

  it('refuses to export a link to an output the source type lacks, naming node and input', () => {
    const doc: WorkflowDocument = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        a: { type: 'test.Num', version: 1, mode: 'normal', inputs: { value: 1 } },
        b: { type: 'test.Show', version: 1, mode: 'normal', inputs: { value: { node: 'a', output: 'NOPE' } } },
      },
    };
    expect(() => toComfyPrompt(doc, registry)).toThrow(ComfyFormatError);
    expect(() => toComfyPrompt(doc, registry)).toThrow(/node "b" input "value".*"NOPE" of node "a"/);
  });

  it('rejects values that are not prompts', () => {
    expect(() => fromComfyPrompt(null)).toThrow(ComfyFormatError);
    expect(() => fromComfyPrompt([])).toThrow(ComfyFormatError);
    expect(() => fromComfyPrompt({ '1': { inputs: {} } })).toThrow(/"1" has no class_type/);
    expect(() => fromComfyPrompt({ '1': { class_type: 'X', inputs: 5 } })).toThrow(/inputs must be an object/);
  });

  // --- Properties

  const literal = fc.oneof(
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string(),
    fc.boolean(),
    fc.array(fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer(), { maxLength: 3 })), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('p', 'q', 'r'), fc.integer(), { maxKeys: 2 }),
  );
  const inputName = fc.constantFrom('a', 'b', 'value', 'text', 'x', 'model', 'seed');

  /** Random documents over known and unknown types, with links that name real outputs (or #i). */
  const docArb = fc
    .uniqueArray(fc.constantFrom(...'123456789abcdef'.split('')), { minLength: 1, maxLength: 8 })
    .chain((ids) =>
      fc
        .tuple(
          ...ids.map(() =>
            fc.record({
              type: fc.constantFrom(...knownTypes, ...unknownTypes),
              version: fc.integer({ min: 1, max: 4 }),
              mode: fc.constantFrom('normal', 'muted', 'bypass'),
              title: fc.option(fc.string(), { nil: undefined }),
              inputs: fc.dictionary(
                inputName,
                fc.oneof(literal, fc.record({ to: fc.constantFrom(...ids), pick: fc.nat(5) })),
                { maxKeys: 4 },
              ),
            }),
          ),
        )
        .map((nodes) => {
          const doc: WorkflowDocument = { format: 'priorgraph', version: 1, nodes: {} };
          nodes.forEach((n, i) => {
            const inputs: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(n.inputs)) {
              if (v !== null && typeof v === 'object' && 'to' in v && 'pick' in v) {
                const target = nodes[ids.indexOf(v.to as string)];
                const outs = outputsByType[target.type];
                if (outs === undefined) inputs[k] = { node: v.to, output: `#${v.pick}` };
                else if (outs.length > 0) inputs[k] = { node: v.to, output: outs[(v.pick as number) % outs.length] };
              } else inputs[k] = v;
            }
            doc.nodes[ids[i]] = {
              type: n.type,
              version: n.version,
              mode: n.mode as 'normal',
              inputs: inputs as WorkflowDocument['nodes'][string]['inputs'],
              ...(n.title !== undefined ? { title: n.title } : {}),
            };
          });
          return doc;
        }),
    );

  it('document → ComfyUI prompt → document is the identity (ui aside)', () => {
    fc.assert(
      fc.property(docArb, (doc) => {
        const prompt = JSON.parse(JSON.stringify(toComfyPrompt(doc, registry)));
        expect(fromComfyPrompt(prompt, registry)).toEqual(doc);
      }),
      { numRuns: 300 },
    );
  });

  const promptArb = fc
    .uniqueArray(fc.constantFrom(...'0123456789'.split('').map((d) => `${d}${d}`)), { minLength: 1, maxLength: 8 })
    .chain((ids) =>
      fc
        .tuple(
          ...ids.map(() =>
            fc.record(
              {
                class_type: fc.constantFrom(...knownTypes, ...unknownTypes),
                inputs: fc.dictionary(
                  inputName,
                  fc.oneof(
                    fc.oneof(fc.integer(), fc.string(), fc.boolean()),
                    fc.record({ __value__: fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 4 }) }),
                    fc.tuple(fc.constantFrom(...ids), fc.nat(4)),
                  ),
                  { maxKeys: 4 },
                ),
                _meta: fc.record({ title: fc.string() }),
              },
              { requiredKeys: ['class_type', 'inputs'] },
            ),
          ),
        )
        .map((nodes) => Object.fromEntries(nodes.map((n, i) => [ids[i], n])) as ComfyPrompt),
    );

  it('ComfyUI prompt → document → ComfyUI prompt is the identity (qualified or unknown class types)', () => {
    fc.assert(
      fc.property(promptArb, (prompt) => {
        const doc = fromComfyPrompt(prompt, registry);
        expect(toComfyPrompt(doc, registry)).toEqual(prompt);
        // Unknown class types are kept with all their data.
        for (const [id, n] of Object.entries(prompt)) {
          expect(doc.nodes[id].type).toBe(n.class_type);
          expect(Object.keys(doc.nodes[id].inputs).sort()).toEqual(Object.keys(n.inputs).sort());
        }
      }),
      { numRuns: 300 },
    );
  });
});

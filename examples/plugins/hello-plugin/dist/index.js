// A minimal third-party priorgraph plugin, shipped as plain ESM JavaScript.
// A plugin is a plain object ({name, version, nodes}); `definePlugin`/`defineNode` from
// @priorgraph/core only add type checking, so a published plugin need not depend on core at run time.

/** Builds a greeting string from a name and a repeat count. */
const Greet = {
  type: 'Greet',
  version: 2,
  category: 'examples/hello',
  displayName: 'Greet',
  description: 'Builds a greeting: "<greeting>, <name>!" repeated `times` times.',
  inputs: {
    name: { kind: 'string', default: 'world', description: 'Who to greet' },
    greeting: { kind: 'combo', options: ['Hello', 'Hi', 'Hey'], default: 'Hello' },
    times: { kind: 'int', default: 1, min: 1, max: 10 },
  },
  outputs: [{ name: 'TEXT', type: 'STRING' }],
  // Version 1 called the input `who`; version 2 renamed it to `name`.
  migrations: {
    1: (inputs) => {
      const { who, ...rest } = inputs;
      return { ...rest, name: who ?? 'world' };
    },
  },
  validate(inputs) {
    if (typeof inputs.name === 'string' && inputs.name.trim() === '') {
      return [{ input: 'name', message: 'name must not be blank' }];
    }
    return [];
  },
  execute({ name, greeting, times }) {
    return { TEXT: Array.from({ length: times }, () => `${greeting}, ${name}!`).join(' ') };
  },
};

/** An output node that shows a text in the editor. */
const ShowText = {
  type: 'ShowText',
  version: 1,
  category: 'examples/hello',
  displayName: 'Show Text',
  outputNode: true,
  inputs: { text: { kind: 'socket', type: 'STRING' } },
  outputs: [],
  execute({ text }, ctx) {
    ctx.ui({ text: [text] });
    return {};
  },
};

let setupCalls = 0;

export default {
  name: 'hello',
  version: '1.0.0',
  description: 'Example third-party plugin: a greeting node and a text display node.',
  nodes: [Greet, ShowText],
  setup(host, log) {
    setupCalls += 1;
    log.info(`hello plugin set up (output dir ${host.outputDir})`);
  },
};

/** How many times setup ran (for tests). */
export function helloSetupCalls() {
  return setupCalls;
}

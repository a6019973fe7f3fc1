/**
 * The conformance fixtures (tools/conformance/, packages/nodes/test/fixtures/conformance/README.md):
 * model folders exported by optimum / diffusers' convert script, stored content-addressed
 * (blobs/ + manifests/<group>.json), and reference tensors from diffusers' own pipelines.
 * `materialize` lays the exports out as the tools wrote them, in a fresh model root.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineNode, definePlugin, type HostInfo, Registry, type WorkflowDocument } from '@priorgraph/core';
import plugin from '../src/index.ts';
import type { ImageValue, LatentValue } from '../src/types.ts';

export const CONFORMANCE = fileURLToPath(new URL('./fixtures/conformance/', import.meta.url));

export interface RefTensor {
  dims: number[];
  data: Float32Array;
}
export interface RefCase {
  meta: Record<string, unknown>;
  tensor(name: string): RefTensor;
}

interface Manifest {
  models: Record<string, Record<string, string>>;
  cases: Record<string, Record<string, unknown> & { tensors: Record<string, { dims: number[]; blob: string }> }>;
}

function manifests(): Manifest {
  const all: Manifest = { models: {}, cases: {} };
  const dir = join(CONFORMANCE, 'manifests');
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const m = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Manifest;
    Object.assign(all.models, m.models);
    Object.assign(all.cases, m.cases);
  }
  return all;
}

const blob = (name: string) => join(CONFORMANCE, 'blobs', name);

/** Copy the named model folders (or input folders) from the store into `root`. */
export function materialize(root: string, names: string[]): void {
  materializeAs(root, Object.fromEntries(names.map((n) => [n, n])));
}

/** Copy fixtures into `root` under other folder names ({fixture: folder}): a store folder (manifests)
 *  or a plain fixture folder such as `dit/base` (the DiT, PixArt and SDXL exports). */
export function materializeAs(root: string, folders: Record<string, string>): void {
  const m = manifests();
  for (const [name, as] of Object.entries(folders)) {
    const files = m.models[name];
    if (!files && existsSync(join(CONFORMANCE, name, 'model_index.json'))) {
      cpSync(join(CONFORMANCE, name), join(root, as), { recursive: true });
      continue;
    }
    if (!files) throw new Error(`conformance fixture "${name}" not found (have ${Object.keys(m.models).join(', ')})`);
    for (const [rel, b] of Object.entries(files)) {
      const dst = join(root, as, rel);
      mkdirSync(dirname(dst), { recursive: true });
      copyFileSync(blob(b), dst);
    }
  }
}

export function refCase(name: string): RefCase {
  const c = manifests().cases[name];
  if (!c) throw new Error(`conformance reference "${name}" not found`);
  const { tensors, ...meta } = c;
  return {
    meta,
    tensor(t: string) {
      const d = tensors[t];
      if (!d) throw new Error(`reference "${name}" has no tensor "${t}"`);
      const buf = readFileSync(blob(d.blob));
      const data = new Float32Array(buf.byteLength / 4);
      for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(i * 4);
      return { dims: d.dims, data };
    },
  };
}

/** ‖a − b‖₂ / ‖b‖₂ */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** What the test's Probe node received, by key. */
export const probed = new Map<string, { latent?: LatentValue; image?: ImageValue }>();

/** A test-only output node that records the LATENT / IMAGE values reaching it. */
const Probe = defineNode({
  type: 'Probe',
  version: 1,
  category: 'test',
  inputs: {
    key: { kind: 'string', default: '' },
    latent: { kind: 'socket', type: 'LATENT', optional: true },
    image: { kind: 'socket', type: 'IMAGE', optional: true },
  },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  execute({ key, latent, image }) {
    probed.set(key, { latent: latent as LatentValue | undefined, image: image as ImageValue | undefined });
    return {};
  },
});

export function conformanceHost(models: string[], inputs: string[] = []): HostInfo {
  const base = mkdtempSync(join(tmpdir(), 'pg-conformance-'));
  const modelRoot = join(base, 'models');
  const inputDir = join(base, 'input');
  materialize(modelRoot, models);
  mkdirSync(inputDir, { recursive: true });
  for (const name of inputs) {
    materialize(join(base, 'inputs-tmp'), [name]);
    for (const f of readdirSync(join(base, 'inputs-tmp', name)))
      copyFileSync(join(base, 'inputs-tmp', name, f), join(inputDir, f));
  }
  return {
    modelRoots: [modelRoot],
    outputDir: join(base, 'output'),
    inputDir,
    tempDir: join(base, 'temp'),
    config: { executionProviders: ['cpu'], modelMemoryBudgetMB: 512 },
  };
}

export function conformanceRegistry(): Registry {
  const registry = new Registry();
  registry.register(plugin, '@priorgraph/nodes');
  registry.register(definePlugin({ name: 'conftest', version: '0', nodes: [Probe] }), '<test>');
  return registry;
}

type NodeSpec = { type: string; inputs: Record<string, unknown> };
/** A workflow document; node types without a plugin prefix are priorgraph's. */
export function workflow(nodes: Record<string, NodeSpec>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes)) {
    out[id] = {
      type: n.type.includes('.') ? n.type : `priorgraph.${n.type}`,
      version: 1,
      mode: 'normal',
      inputs: n.inputs,
    };
  }
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}

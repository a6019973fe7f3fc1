/**
 * The server the end-to-end test drives: the REAL packages/server createServer on an ephemeral port,
 * with the built-in node plugin and the demo models when they are present (PRIORGRAPH_E2E_PLUGIN=dev
 * picks the small dev plugin instead, for working on the editor without models).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PluginDefinition } from '../../core/src/index.ts';
import { createServer, type PriorgraphServer } from '../../server/src/index.ts';

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const UI_DIST = join(REPO, 'packages', 'ui', 'dist');

export interface E2eServer {
  url: string;
  plugin: string;
  defaultWorkflow: Record<string, unknown>;
  close(): Promise<void>;
}

/** The example workflow the editor opens first: PRIORGRAPH_E2E_WORKFLOW, else the priorgraph documents
 *  under examples/ (text-to-image prior swap vs CFG first). */
export function findExampleWorkflow(): string | undefined {
  if (process.env.PRIORGRAPH_E2E_WORKFLOW) return process.env.PRIORGRAPH_E2E_WORKFLOW;
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (!existsSync(dir) || depth > 3) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'plugins') walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.json')) {
        try {
          if (JSON.parse(readFileSync(p, 'utf8')).format === 'priorgraph') found.push(p);
        } catch {
          // not JSON
        }
      }
    }
  };
  walk(join(REPO, 'examples'), 0);
  const rank = (p: string) => {
    const n = p.toLowerCase();
    return (/(t2i|txt2img|text)/.test(n) ? 0 : 2) + (/(swap|cfg)/.test(n) ? 0 : 1);
  };
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0];
}

async function builtinSetup(): Promise<{
  plugin: PluginDefinition;
  workflow: Record<string, unknown>;
  modelRoots: string[];
}> {
  const mod = (await import('../../nodes/src/index.ts')) as { default: PluginDefinition };
  const file = findExampleWorkflow();
  if (!file) throw new Error('no example workflow (a priorgraph document under examples/) found for the editor test');
  const workflow = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Record<string, { inputs?: Record<string, unknown> }>;
  };
  const models = process.env.PRIORGRAPH_MODELS ?? process.env.PRIORGRAPH_DEMO_MODELS ?? join(REPO, 'models');
  // the models the example loads (model_path / unet_path / ... inputs) must be there, else say so up front
  const wanted = Object.values(workflow.nodes).flatMap((n) =>
    Object.entries(n.inputs ?? {})
      .filter(([k, v]) => k.endsWith('_path') && typeof v === 'string')
      .map(([, v]) => v as string),
  );
  const missing = wanted.filter((m) => !existsSync(join(models, m)));
  if (missing.length) {
    throw new Error(
      `the example workflow ${file} needs models missing under ${models}: ${missing.join(', ')} (set PRIORGRAPH_MODELS to another model root)`,
    );
  }
  return { plugin: mod.default, workflow, modelRoots: [models] };
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', 'test', 'test-artifacts'].includes(e.name)) continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Build the editor when its sources are newer than the build (npm test does this too). */
export async function ensureBuilt(): Promise<void> {
  const ui = join(REPO, 'packages', 'ui');
  const index = join(UI_DIST, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(ui)) return;
  const { build } = await import('vite');
  await build({ root: ui, configFile: join(ui, 'vite.config.ts'), logLevel: 'error' });
}

export async function startE2eServer(
  opts: {
    plugin?: 'dev' | 'builtin';
    workflow?: Record<string, unknown>;
    token?: string;
    /** with the built-in plugin and a workflow: these model roots instead of the demo models */
    modelRoots?: string[];
    /** a Redis URL: the server hands jobs to queue workers */
    queue?: string;
    /** the per-job memory budget validation checks (bytes) */
    memoryBudgetBytes?: number;
  } = {},
): Promise<E2eServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-ui-e2e-'));
  let setup: { plugin: PluginDefinition; workflow: Record<string, unknown>; modelRoots: string[] };
  if ((opts.plugin ?? process.env.PRIORGRAPH_E2E_PLUGIN) === 'dev') {
    const { devPlugin, devWorkflow } = await import('./fixtures/dev-plugin.ts');
    setup = { plugin: devPlugin, workflow: devWorkflow, modelRoots: [join(dataDir, 'models')] };
  } else if (opts.modelRoots && opts.workflow) {
    const mod = (await import('../../nodes/src/index.ts')) as { default: PluginDefinition };
    setup = { plugin: mod.default, workflow: opts.workflow, modelRoots: opts.modelRoots };
  } else setup = await builtinSetup();
  if (opts.workflow) setup.workflow = opts.workflow;
  const server: PriorgraphServer = createServer({
    port: 0,
    dataDir,
    modelRoots: setup.modelRoots,
    plugins: [setup.plugin],
    defaultWorkflow: setup.workflow,
    uiDir: UI_DIST,
    token: opts.token,
    queue: opts.queue,
    memoryBudgetBytes: opts.memoryBudgetBytes,
    log: { debug() {}, info() {}, warn() {}, error: (m, d) => process.stderr.write(`[server] ${m} ${d ?? ''}\n`) },
  });
  const { url } = await server.listen();
  return {
    url,
    plugin: setup.plugin.name,
    defaultWorkflow: setup.workflow,
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

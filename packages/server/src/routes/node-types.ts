/**
 * What nodes there are and what they can take: GET /object_info[/{type}] (ComfyUI V1 shape),
 * GET /api/node-types (with a JSON Schema of each node's inputs), the model folders and their files
 * (GET /models[/{folder}]) and the embeddings (none).
 */
import { statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Router, Router as router } from 'express';
import type { ServerContext } from '../context.js';
import { dirEntries } from '../paths.js';
import { apiError } from '../schemas.js';
import { both } from './http.js';

/** Lists directory entries recursively (relative paths), bounded. */
function listFiles(dir: string, max = 5000): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 6 || out.length >= max) return;
    for (const e of dirEntries(d).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile()) out.push(relative(dir, p).split('\\').join('/'));
      if (out.length >= max) return;
    }
  };
  walk(dir, 0);
  return out;
}

/** Model folders: the sub-directories of every model root. */
function modelFolders(modelRoots: readonly string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const root of modelRoots) {
    for (const e of dirEntries(root)) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      m.set(e.name, [...(m.get(e.name) ?? []), join(root, e.name)]);
    }
  }
  return m;
}

function nodeTypes(ctx: ServerContext): Record<string, unknown> {
  const schemas = ctx.registry.jsonSchemas();
  const out: Record<string, unknown> = {};
  for (const t of ctx.registry.list()) {
    out[t.qualifiedName] = {
      type: t.qualifiedName,
      plugin: t.plugin,
      name: t.type,
      version: t.def.version,
      category: t.def.category,
      display_name: t.def.displayName ?? t.type,
      description: t.def.description ?? '',
      output_node: t.def.outputNode === true,
      outputs: (t.def.outputs as Array<{ name: string; type: string; description?: string }>).map((o) => ({
        name: o.name,
        type: o.type,
        description: o.description,
      })),
      inputs_schema: schemas[t.qualifiedName],
    };
  }
  return out;
}

export function nodeTypesRouter(ctx: ServerContext): Router {
  const { registry, host, log } = ctx;
  const r = router();
  r.get(both('/object_info'), async (_req, res) => {
    res.json(await registry.objectInfo(host, log));
  });
  r.get(both('/object_info/:type'), async (req, res) => {
    const type = String(req.params.type);
    const found = registry.resolve(type);
    if (!found.ok) {
      res.json({});
      return;
    }
    const all = await registry.objectInfo(host, log);
    const entry = all[found.node.qualifiedName];
    res.json(entry ? { [type]: entry } : {});
  });
  r.get('/api/node-types', (_req, res) => {
    res.json(nodeTypes(ctx));
  });

  r.get(both('/models'), (_req, res) => {
    res.json([...modelFolders(host.modelRoots).keys()].sort());
  });
  r.get(both('/models/:folder'), (req, res) => {
    const dirs = modelFolders(host.modelRoots).get(String(req.params.folder));
    if (!dirs) {
      res.status(404).json(apiError('not_found', `no model folder ${req.params.folder}`, { field: 'folder' }));
      return;
    }
    const files = new Set<string>();
    for (const d of dirs) for (const f of listFiles(d)) if (statSync(join(d, f)).isFile()) files.add(f);
    res.json([...files].sort());
  });
  r.get(both('/embeddings'), (_req, res) => {
    res.json([]);
  });
  return r;
}

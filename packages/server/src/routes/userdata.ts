/**
 * ComfyUI's per-user files (`/userdata`): the editor keeps named workflows here as
 * `workflows/<name>.json`. Every path is confined to `<dataDir>/userdata` (./paths.ts); a file is
 * at most `maxUserdataBytes`, and there are at most MAX_FILES of them.
 *
 *   GET    /userdata?dir=workflows[&recurse=true][&full_info=true]  → ["a.json", ...] (or {path,size,modified})
 *   GET    /userdata/<file>        → the file (404 when absent)
 *   POST   /userdata/<file>[?overwrite=false]  body: the file → "<file>" (409 when it exists and overwrite=false)
 *   DELETE /userdata/<file>        → 204
 * `<file>` is one URL segment: `workflows%2Fname.json`.
 */
import { mkdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import express, { type Response, type Router, Router as router } from 'express';
import { confinedPath, mimeOf, realpathInside, UnsafePathError } from '../paths.js';
import { apiError } from '../schemas.js';
import { both } from './http.js';

/** The default size limit of one user file. */
export const MAX_USERDATA_BYTES = 4 * 1024 * 1024;
/** At most this many files are listed or kept. */
const MAX_FILES = 10_000;

/** `workflows/x.json` → its path under `root`, or a 400 sent (and undefined). */
function resolveFile(root: string, file: string, res: Response, field = 'file'): string | undefined {
  try {
    const parts = file.split('/');
    const name = parts.pop() ?? '';
    if (parts.some((p) => p.startsWith('.')) || name.startsWith('.')) {
      throw new UnsafePathError(field, `${field} may not name a hidden file or folder`);
    }
    return confinedPath(root, parts.join('/'), name);
  } catch (e) {
    if (!(e instanceof UnsafePathError)) throw e;
    res.status(400).json(apiError('invalid_path', `${field} "${file}": ${e.message}`, { field }));
    return undefined;
  }
}

async function listDir(
  dir: string,
  recurse: boolean,
): Promise<Array<{ path: string; size: number; modified: number }>> {
  const out: Array<{ path: string; size: number; modified: number }> = [];
  const walk = async (d: string, depth: number) => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.') || out.length >= MAX_FILES) continue;
      const p = join(d, e.name);
      if (e.isDirectory() && recurse && depth < 8) await walk(p, depth + 1);
      else if (e.isFile()) {
        const st = await stat(p);
        out.push({ path: relative(dir, p).split('\\').join('/'), size: st.size, modified: Math.round(st.mtimeMs) });
      }
    }
  };
  await walk(dir, 0);
  return out;
}

/** The routes; installed before the JSON body parser, so that a file is stored byte for byte. */
export function userdataRouter(options: { dataDir: string; maxUserdataBytes?: number }): Router {
  const app = router();
  const root = resolve(options.dataDir, 'userdata');
  mkdirSync(root, { recursive: true });
  const limit = options.maxUserdataBytes ?? MAX_USERDATA_BYTES;

  app.get(both('/userdata'), async (req, res) => {
    const q = req.query as Record<string, unknown>;
    const dir = typeof q.dir === 'string' ? q.dir : '';
    if (!dir) {
      res.status(400).json(apiError('invalid_request', 'dir: the folder to list is required (?dir=workflows)'));
      return;
    }
    const full = resolveFile(root, dir, res, 'dir');
    if (!full) return;
    const st = await stat(full).catch(() => null);
    if (!st?.isDirectory()) {
      res.status(404).json(apiError('not_found', `no user folder "${dir}"`, { field: 'dir' }));
      return;
    }
    const files = await listDir(full, q.recurse === 'true');
    res.json(q.full_info === 'true' ? files : files.map((f) => f.path));
  });

  /** The existing user file `file` names, or a 400 / 404 sent (and undefined). */
  const existingFile = async (file: string, res: Response): Promise<string | undefined> => {
    const full = resolveFile(root, file, res);
    if (!full) return undefined;
    const st = await stat(full).catch(() => null);
    if (st?.isFile() && realpathInside(root, full)) return full;
    res.status(404).json(apiError('not_found', `no user file "${file}"`, { field: 'file' }));
    return undefined;
  };

  app.get(both('/userdata/:file'), async (req, res) => {
    const full = await existingFile(String(req.params.file), res);
    if (!full) return;
    res.type(mimeOf(full)).send(await readFile(full));
  });

  app.post(both('/userdata/:file'), express.raw({ type: () => true, limit }), async (req, res) => {
    const full = resolveFile(root, String(req.params.file), res);
    if (!full) return;
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (full.endsWith('.json')) {
      try {
        JSON.parse(body.toString('utf8'));
      } catch (e) {
        res
          .status(400)
          .json(
            apiError('invalid_json', `${req.params.file}: not valid JSON: ${(e as Error).message}`, { field: 'body' }),
          );
        return;
      }
    }
    const exists = (await stat(full).catch(() => null)) !== null;
    if (exists && req.query.overwrite === 'false') {
      res
        .status(409)
        .json(apiError('exists', `user file "${req.params.file}" exists (send overwrite=true to replace it)`));
      return;
    }
    if (!exists && (await listDir(root, true)).length >= MAX_FILES) {
      res.status(507).json(apiError('too_many_files', `at most ${MAX_FILES} user files are kept; delete some first`));
      return;
    }
    await mkdir(dirname(full), { recursive: true });
    if (!realpathInside(root, dirname(full))) {
      res.status(400).json(apiError('invalid_path', 'path leaves its directory', { field: 'file' }));
      return;
    }
    // write then rename: a reader never sees half a file
    const tmp = `${full}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, full);
    const st = await stat(full);
    res.json(
      req.query.full_info === 'true'
        ? { path: req.params.file, size: st.size, modified: Math.round(st.mtimeMs) }
        : req.params.file,
    );
  });

  app.delete(both('/userdata/:file'), async (req, res) => {
    const full = await existingFile(String(req.params.file), res);
    if (!full) return;
    await rm(full);
    res.status(204).end();
  });
  return app;
}

/**
 * The file resources: GET /view (an input, output or temp file) and POST /upload/image (multipart,
 * field "image"). Every path is confined to its directory (../paths.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkImageSize, type HostInfo, ImageHeaderError, readImageHeader } from '@priorgraph/core';
import { type RequestHandler, type Response, type Router, Router as router } from 'express';
import multer from 'multer';
import type { ServerContext } from '../context.js';
import { confinedPath, mimeOf, realpathInside, safeFileName, UnsafePathError } from '../paths.js';
import { apiError, UploadFields, ViewQuery } from '../schemas.js';
import { both, parsedOr400 } from './http.js';

type DirType = 'input' | 'output' | 'temp';

const dirOf = (host: HostInfo, type: DirType) =>
  type === 'input' ? host.inputDir : type === 'temp' ? host.tempDir : host.outputDir;

/** confinedPath, or a 400 naming the field sent (and undefined); `rename` maps the field's name. */
function confinedOr400(
  res: Response,
  base: string,
  subfolder: string,
  name: string,
  rename: (field: string) => string = (f) => f,
): string | undefined {
  try {
    return confinedPath(base, subfolder, name);
  } catch (e) {
    if (!(e instanceof UnsafePathError)) throw e;
    res.status(400).json(apiError('invalid_path', e.message, { field: rename(e.field) }));
    return undefined;
  }
}

/** Multipart parsing errors are the client's: 413 over the limit, 400 otherwise (never 500). */
function uploadParser(maxUploadBytes: number): RequestHandler {
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxUploadBytes, files: 1, fields: 16, fieldSize: 64 * 1024, parts: 20 },
  });
  const single = upload.single('image');
  return (req, res, next) => {
    single(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { code?: string; message?: string; field?: string };
      if (e.code === 'LIMIT_FILE_SIZE') {
        res
          .status(413)
          .json(apiError('body_too_large', `upload too large: ${e.message}`, { field: e.field ?? 'image' }));
      } else {
        const message = `upload rejected: ${e.message ?? String(err)}`;
        res.status(400).json(apiError('invalid_upload', message, { field: e.field ?? 'body' }));
      }
    });
  };
}

/** `name`, or `name (1)`, `name (2)`… the first that does not exist yet. */
function freeName(base: string, subfolder: string, name: string): { name: string; full: string } {
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : '';
  let full = confinedPath(base, subfolder, name);
  for (let i = 1; existsSync(full); i++) {
    name = `${stem} (${i})${ext}`;
    full = confinedPath(base, subfolder, name);
  }
  return { name, full };
}

export function filesRouter(ctx: ServerContext): Router {
  const { host, store } = ctx;
  const r = router();
  r.get(both('/view'), async (req, res) => {
    const q = parsedOr400(res, ViewQuery, 'query', req.query);
    if (!q) return;
    const base = dirOf(host, q.type);
    const full = confinedOr400(res, base, q.subfolder, q.filename);
    if (!full) return;
    const st = await stat(full).catch(() => null);
    if (!st?.isFile()) {
      res.status(404).json(apiError('not_found', `no file ${q.filename} in ${q.type}`, { field: 'filename' }));
      return;
    }
    if (!realpathInside(base, full)) {
      res.status(400).json(apiError('invalid_path', 'path leaves its directory', { field: 'filename' }));
      return;
    }
    res.set('Content-Type', mimeOf(full));
    res.set('Content-Disposition', `inline; filename="${safeFileName(q.filename)}"`);
    res.sendFile(full, { dotfiles: 'allow' });
  });

  r.post(both('/upload/image'), uploadParser(ctx.options.maxUploadBytes), async (req, res) => {
    const f = parsedOr400(res, UploadFields, 'body', req.body ?? {});
    if (!f) return;
    const file = req.file;
    if (!file) {
      const message = 'image: a multipart file field "image" is required';
      res.status(400).json(apiError('invalid_request', message, { field: 'image' }));
      return;
    }
    try {
      checkImageSize(readImageHeader(file.buffer), ctx.options.maxImagePixels);
    } catch (e) {
      if (!(e instanceof ImageHeaderError)) throw e;
      res.status(400).json(apiError('invalid_image', `image: ${e.message}`, { field: 'image' }));
      return;
    }
    const overwrite = ['true', '1', 'on'].includes(f.overwrite ?? '');
    const base = dirOf(host, f.type);
    let name = safeFileName(file.originalname || 'upload.png');
    let full = confinedOr400(res, base, f.subfolder, name, (field) => (field === 'filename' ? 'image' : field));
    if (!full) return;
    if (overwrite && f.type === 'output' && existsSync(full)) {
      const holder = await store.referencing({ filename: name, subfolder: f.subfolder, type: 'output' });
      if (holder) {
        const message = `image: output ${name} is referenced by the history of prompt ${holder}; upload it under another name or delete that history entry first`;
        res.status(409).json(apiError('output_in_history', message, { field: 'image', prompt_id: holder }));
        return;
      }
    }
    if (!overwrite) ({ name, full } = freeName(base, f.subfolder, name));
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, file.buffer);
    res.json({ name, subfolder: f.subfolder, type: f.type });
  });
  return r;
}

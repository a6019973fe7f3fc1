/**
 * What every router shares: the `/x` + `/api/x` pair of a ComfyUI route, the 400 answer of a body or
 * query that fails its zod schema (./schemas.ts), the JSON body parser and the depth guard.
 */
import { parseJsonExact } from '@priorgraph/core';
import express, { type Express, type Response } from 'express';
import type { z } from 'zod';
import { apiError, MAX_JSON_DEPTH, parseWith, tooDeep } from '../schemas.js';

/** `/x` and `/api/x`: ComfyUI-compatible routes answer under both. */
export const both = (p: string): string[] => [p, `/api${p}`];

/** An absent or empty body reads as `{}` (clients POST /interrupt with no body). */
export function asObject(body: unknown): unknown {
  return body === undefined ||
    body === null ||
    (typeof body === 'object' && Object.keys(body).length === 0 && !Array.isArray(body))
    ? {}
    : body;
}

/** `value` checked by `schema`, or a 400 naming the offending field sent (and undefined). */
export function parsedOr400<S extends z.ZodType>(
  res: Response,
  schema: S,
  where: string,
  value: unknown,
): z.infer<S> | undefined {
  const p = parseWith(schema, where, value);
  if (p.ok) return p.value;
  res.status(400).json(p.error);
  return undefined;
}

/**
 * ComfyUI parses the body as JSON whatever the content type; so do we (except multipart). The text is
 * parsed by core's parseJsonExact, so that a seed above 2^53 − 1 (ComfyUI clients send up to 2^64 − 1)
 * arrives exact instead of rounded by JSON.parse. Absurdly deep JSON is refused, naming where, before
 * anything walks it recursively.
 */
export function installJsonBody(app: Express, maxBodyBytes: number): void {
  app.use(
    express.text({
      limit: maxBodyBytes,
      type: (req) => !String(req.headers['content-type'] ?? '').startsWith('multipart/'),
    }),
  );
  app.use((req, _res, next) => {
    if (typeof req.body !== 'string') return next();
    if (req.body.trim() === '') {
      req.body = {};
      return next();
    }
    try {
      req.body = parseJsonExact(req.body);
      next();
    } catch (e) {
      next(Object.assign(new Error((e as Error).message), { type: 'entity.parse.failed', status: 400 }));
    }
  });
  app.use((req, res, next) => {
    const at = tooDeep(req.body, 'body');
    if (at === null) return next();
    res
      .status(400)
      .json(apiError('invalid_request', `${at}: nested more than ${MAX_JSON_DEPTH} levels deep`, { field: at }));
  });
}

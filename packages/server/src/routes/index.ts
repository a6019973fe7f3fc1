/**
 * HTTP routes, one router per resource. ComfyUI-compatible ones are served bare and under /api
 * (exact shapes in shared/reference/comfyui-api.md); native ones live under /api only. Every body
 * and query is checked with zod (../schemas.ts); control POSTs answer `{}`. The routers get what they
 * need from the ServerContext (../context.ts), never from ../server.ts.
 */
import type { Express } from 'express';
import type { ServerContext } from '../context.js';
import { filesRouter } from './files.js';
import { historyRouter } from './history.js';
import { installJsonBody } from './http.js';
import { nativeRouter } from './native.js';
import { nodeTypesRouter } from './node-types.js';
import { promptRouter } from './prompt.js';
import { queueRouter } from './queue.js';
import { systemRouter } from './system.js';
import { userdataRouter } from './userdata.js';

export { queueFastPath, queueItem } from './queue.js';

/** After the JSON body parser, in this order (no two of them answer the same path). */
const RESOURCE_ROUTERS = [
  promptRouter,
  queueRouter,
  historyRouter,
  filesRouter,
  nodeTypesRouter,
  systemRouter,
  nativeRouter,
];

export function installRoutes(app: Express, ctx: ServerContext): void {
  // user files are stored byte for byte: their routes come before the JSON body parser
  app.use(userdataRouter(ctx.options));
  installJsonBody(app, ctx.options.maxBodyBytes);
  for (const make of RESOURCE_ROUTERS) app.use(make(ctx));
}

/**
 * The server itself: GET /system_stats (machine, devices and priorgraph's own counters),
 * GET /features, GET /extensions (none: the editor is priorgraph's own).
 */
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import { type Router, Router as router } from 'express';
import { SERVER_VERSION, type ServerContext } from '../context.js';
import { redactArgv } from '../schemas.js';
import { both } from './http.js';

function systemStats(ctx: ServerContext): Record<string, unknown> {
  let runtime: unknown = null;
  try {
    runtime = ctx.options.runtimeStats?.() ?? null;
  } catch (e) {
    runtime = { error: e instanceof Error ? e.message : String(e) };
  }
  return {
    system: {
      os: platform(),
      ram_total: totalmem(),
      ram_free: freemem(),
      comfyui_version: `priorgraph ${SERVER_VERSION}`,
      python_version: `none (Node.js ${process.version})`,
      pytorch_version: 'none (onnxruntime-node)',
      embedded_python: false,
      argv: redactArgv(process.argv),
      kernel: release(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpu_count: cpus().length,
    },
    devices: [
      {
        name: 'cpu',
        type: 'cpu',
        index: 0,
        vram_total: totalmem(),
        vram_free: freemem(),
        torch_vram_total: 0,
        torch_vram_free: 0,
      },
    ],
    priorgraph: {
      version: SERVER_VERSION,
      uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
      cache: ctx.executor.cacheInfo(),
      ws_clients: ctx.hub.size,
      runtime,
    },
  };
}

export function systemRouter(ctx: ServerContext): Router {
  const r = router();
  r.get(both('/system_stats'), (_req, res) => {
    res.json(systemStats(ctx));
  });
  r.get(both('/features'), (_req, res) => {
    res.json({ supports_preview_metadata: true, max_upload_size: ctx.options.maxUploadBytes });
  });
  r.get(both('/extensions'), (_req, res) => {
    res.json([]);
  });
  return r;
}

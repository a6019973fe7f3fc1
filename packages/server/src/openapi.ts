/**
 * GET /api/openapi.json: an OpenAPI 3.1 description of every route. ComfyUI-compatible routes are
 * listed under both their bare path and /api.
 */
import { z } from 'zod';
import { ClearDeleteBody, InterruptBody, PromptBody } from './schemas.js';

interface RouteDoc {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  comfy?: boolean;
  body?: Record<string, unknown>;
  query?: Array<{ name: string; description: string; required?: boolean }>;
  params?: string[];
  responses?: Record<string, string>;
}

const schema = (s: z.ZodType) => z.toJSONSchema(s, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        type: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'string' },
        extra_info: { type: 'object', description: 'field: the offending body/query field, when there is one' },
      },
    },
    node_errors: { type: 'object' },
  },
};

export const ROUTES: RouteDoc[] = [
  {
    method: 'post',
    path: '/prompt',
    comfy: true,
    summary: 'Queue a workflow (ComfyUI API-format prompt or priorgraph document in `prompt`)',
    body: schema(PromptBody),
    responses: {
      '200': '{prompt_id, number, node_errors}',
      '400': 'validation failed: {error, node_errors}',
      '409': 'duplicate prompt_id',
    },
  },
  { method: 'get', path: '/prompt', comfy: true, summary: 'Queue size: {exec_info:{queue_remaining}}' },
  {
    method: 'get',
    path: '/queue',
    comfy: true,
    summary:
      'Running and pending jobs: {queue_running:[item], queue_pending:[item]}, item = [number, prompt_id, prompt, extra_data, outputs]',
  },
  {
    method: 'post',
    path: '/queue',
    comfy: true,
    summary: 'Clear pending jobs or delete some: {clear:true} | {delete:[ids]}; answers {}',
    body: schema(ClearDeleteBody),
  },
  {
    method: 'post',
    path: '/interrupt',
    comfy: true,
    summary: 'Interrupt the running job (or only the given prompt_id); answers {}',
    body: schema(InterruptBody),
  },
  {
    method: 'get',
    path: '/history',
    comfy: true,
    summary:
      'Finished jobs, keyed by prompt id (max_items newest ones, skipping `offset` newest; 200 when max_items is omitted). Headers X-Priorgraph-History-Total and X-Priorgraph-History-Next-Offset page through the rest',
    query: [
      { name: 'max_items', description: 'how many (default 200)' },
      { name: 'offset', description: 'skip this many of the newest' },
    ],
  },
  {
    method: 'get',
    path: '/history/{id}',
    comfy: true,
    params: ['id'],
    summary:
      'One finished job {id: {prompt, outputs, status, meta}}; {} while queued/running/unknown, with header X-Priorgraph-Job-Status: pending|running|unknown (?include_pending=1: queued/running jobs with status_str pending|running)',
    query: [{ name: 'include_pending', description: '1 to get queued/running jobs too (status.completed false)' }],
  },
  {
    method: 'post',
    path: '/history',
    comfy: true,
    summary: 'Clear history or delete entries: {clear:true} | {delete:[ids]}; answers {}',
    body: schema(ClearDeleteBody),
  },
  {
    method: 'get',
    path: '/view',
    comfy: true,
    summary: 'A file from the output, input or temp directory (confined: traversal answers 400)',
    query: [
      { name: 'filename', description: 'file name', required: true },
      { name: 'subfolder', description: 'relative folder' },
      { name: 'type', description: 'output | input | temp (default output)' },
    ],
  },
  {
    method: 'post',
    path: '/upload/image',
    comfy: true,
    summary: 'Upload an image (multipart: image, overwrite, type, subfolder) → {name, subfolder, type}',
  },
  {
    method: 'get',
    path: '/userdata',
    comfy: true,
    summary:
      'User files in a folder (the editor keeps named workflows in workflows/) → [name] or [{path, size, modified}]',
    query: [
      { name: 'dir', description: 'the folder, e.g. workflows', required: true },
      { name: 'recurse', description: 'true: include sub-folders' },
      { name: 'full_info', description: 'true: {path, size, modified} per file' },
    ],
  },
  {
    method: 'get',
    path: '/userdata/{file}',
    comfy: true,
    params: ['file'],
    summary: 'One user file (file is one encoded segment: workflows%2Fname.json)',
  },
  {
    method: 'post',
    path: '/userdata/{file}',
    comfy: true,
    params: ['file'],
    summary: 'Store a user file byte for byte (409 when it exists and overwrite=false; 413 over the limit)',
    query: [{ name: 'overwrite', description: 'false: refuse to replace an existing file' }],
  },
  { method: 'delete', path: '/userdata/{file}', comfy: true, params: ['file'], summary: 'Delete a user file' },
  { method: 'get', path: '/object_info', comfy: true, summary: 'Every node type in ComfyUI V1 shape' },
  { method: 'get', path: '/object_info/{type}', comfy: true, params: ['type'], summary: 'One node type' },
  { method: 'get', path: '/system_stats', comfy: true, summary: 'System and device info' },
  { method: 'get', path: '/features', comfy: true, summary: '{supports_preview_metadata, max_upload_size}' },
  { method: 'get', path: '/embeddings', comfy: true, summary: 'Textual-inversion embeddings (none): []' },
  { method: 'get', path: '/extensions', comfy: true, summary: 'Frontend extensions (none): []' },
  { method: 'get', path: '/models', comfy: true, summary: 'Model folders (sub-directories of the model roots)' },
  { method: 'get', path: '/models/{folder}', comfy: true, params: ['folder'], summary: 'Files in a model folder' },
  {
    method: 'get',
    path: '/ws',
    comfy: true,
    summary:
      'WebSocket (?clientId=&token=): ComfyUI events; send {type:"subscribe", data:{prompt_id}|{prompt_ids}|{all:true}} to follow other prompts',
  },
  {
    method: 'post',
    path: '/api/workflows/run',
    summary: 'Run a priorgraph document (or API prompt) given as the body; ?wait=1 answers with outputs when done',
    query: [
      { name: 'wait', description: '1 to wait for the result' },
      { name: 'timeout_s', description: 'how long to wait (default 600)' },
      { name: 'prompt_id', description: 'choose the id' },
      { name: 'client_id', description: 'websocket clientId that owns it' },
    ],
    responses: { '200': '{prompt_id, status, outputs, error} (wait)', '202': '{prompt_id, number, status}' },
  },
  {
    method: 'get',
    path: '/api/jobs',
    summary: 'Jobs, newest first: {jobs, total, offset, limit, next_offset}',
    query: [
      { name: 'status', description: 'comma-separated statuses (default: the finished ones)' },
      { name: 'offset', description: 'skip this many' },
      { name: 'limit', description: 'how many, 1–1000 (default 50)' },
    ],
  },
  {
    method: 'get',
    path: '/api/jobs/{id}',
    params: ['id'],
    summary: 'A job: status pending|running|success|error|interrupted (404 unknown)',
  },
  { method: 'get', path: '/api/node-types', summary: 'Every node type with a JSON Schema of its inputs' },
  { method: 'get', path: '/api/plugins', summary: 'Loaded and failed plugins (with reasons)' },
  {
    method: 'get',
    path: '/api/workers',
    summary: 'The workers that run jobs (local worker process, or queue workers by heartbeat)',
  },
  { method: 'get', path: '/api/default-workflow', summary: 'The workflow the editor opens first (404 when none)' },
  { method: 'get', path: '/api/openapi.json', summary: 'This document' },
];

export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.comfy ? 'comfyui' : 'priorgraph'],
      parameters: [
        ...(r.params ?? []).map((p) => ({ name: p, in: 'path', required: true, schema: { type: 'string' } })),
        ...(r.query ?? []).map((q) => ({
          name: q.name,
          in: 'query',
          required: q.required === true,
          description: q.description,
          schema: { type: 'string' },
        })),
      ],
      responses: {
        ...Object.fromEntries(Object.entries(r.responses ?? { '200': 'OK' }).map(([k, v]) => [k, { description: v }])),
        '400': {
          description: 'bad request (names the field)',
          content: { 'application/json': { schema: errorSchema } },
        },
        '401': { description: 'token required (when the server has one)' },
      },
    };
    if (r.body) op.requestBody = { required: false, content: { 'application/json': { schema: r.body } } };
    const list = r.comfy && !r.path.startsWith('/api/') ? [r.path, `/api${r.path}`] : [r.path];
    for (const p of list) paths[p] = { ...(paths[p] ?? {}), [r.method]: op };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'priorgraph server',
      version,
      description:
        'ComfyUI-compatible API (bare and /api-prefixed) plus priorgraph native routes. Auth: Authorization: Bearer <token> (or ?token=) when the server has a token.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}

/**
 * zod schemas of every request body, query and websocket message the server accepts, and the
 * 400 answer that names the offending field (in ComfyUI's `{error, node_errors}` shape).
 */
import { z } from 'zod';

export const PROMPT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const promptId = z.string().regex(PROMPT_ID_RE, 'must be 1–128 characters of letters, digits and ._:-');
const objectRecord = z.record(z.string(), z.unknown());

/** POST /prompt (ComfyUI). `prompt` is an API-format prompt or a priorgraph document. */
export const PromptBody = z.looseObject({
  prompt: objectRecord,
  client_id: z.string().max(256).optional(),
  prompt_id: promptId.optional(),
  number: z.number().finite().optional(),
  front: z.boolean().optional(),
  extra_data: objectRecord.optional(),
  partial_execution_targets: z.array(z.string().max(256)).max(10_000).optional(),
});
export type PromptBody = z.infer<typeof PromptBody>;

/** POST /queue and POST /history. */
export const ClearDeleteBody = z.looseObject({
  clear: z.boolean().optional(),
  delete: z.array(z.string().max(256)).max(100_000).optional(),
});

/** POST /interrupt: no body (interrupt whatever runs) or `{prompt_id}`. */
export const InterruptBody = z.looseObject({ prompt_id: z.string().max(256).optional() });

const intString = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `${name} must be an integer`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const HistoryQuery = z.looseObject({
  max_items: intString('max_items', 0, 1_000_000).optional(),
  offset: intString('offset', 0, Number.MAX_SAFE_INTEGER).optional(),
});

export const JobsQuery = z.looseObject({
  offset: intString('offset', 0, Number.MAX_SAFE_INTEGER).optional(),
  limit: intString('limit', 1, 1000).optional(),
  status: z
    .string()
    .transform((v) => v.split(',').filter((x) => x !== ''))
    .pipe(z.array(z.enum(['pending', 'running', 'success', 'error', 'interrupted'])).min(1))
    .optional(),
});

export const ViewQuery = z.looseObject({
  filename: z.string().min(1).max(1024),
  subfolder: z.string().max(1024).optional().default(''),
  type: z.enum(['output', 'input', 'temp']).optional().default('output'),
});

export const UploadFields = z.looseObject({
  overwrite: z.enum(['true', 'false', '1', '0', 'on', 'off', '']).optional(),
  type: z.enum(['input', 'temp', 'output']).optional().default('input'),
  subfolder: z.string().max(1024).optional().default(''),
});

export const RunQuery = z.looseObject({
  wait: z.enum(['0', '1', 'true', 'false']).optional(),
  timeout_s: intString('timeout_s', 1, 24 * 3600).optional(),
  prompt_id: promptId.optional(),
  client_id: z.string().max(256).optional(),
});

/** Messages a websocket client may send. */
export const WsMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('feature_flags'),
    data: z.looseObject({ supports_preview_metadata: z.boolean().optional() }).optional().default({}),
  }),
  z.object({
    type: z.literal('subscribe'),
    data: z.union([
      z.object({ prompt_id: z.string().max(256) }),
      z.object({ prompt_ids: z.array(z.string().max(256)).max(10_000) }),
      z.object({ all: z.literal(true) }),
    ]),
  }),
  z.object({
    type: z.literal('unsubscribe'),
    data: z.union([
      z.object({ prompt_id: z.string().max(256) }),
      z.object({ prompt_ids: z.array(z.string().max(256)).max(10_000) }),
      z.object({ all: z.literal(true) }),
    ]),
  }),
]);
export type WsMessage = z.infer<typeof WsMessage>;

export interface ApiError {
  error: { type: string; message: string; details: string; extra_info: Record<string, unknown> };
  node_errors: Record<string, unknown>;
}

export function apiError(type: string, message: string, extra: Record<string, unknown> = {}): ApiError {
  return { error: { type, message, details: message, extra_info: extra }, node_errors: {} };
}

function pathOf(where: string, path: ReadonlyArray<PropertyKey>): string {
  return [where, ...path.map(String)].filter((p) => p !== '').join('.');
}

/** A 400 body naming the first offending field, with all issues in extra_info. */
export function zodError(where: string, err: z.ZodError): ApiError {
  const issues = err.issues.map((i) => ({ field: pathOf(where, i.path), message: i.message }));
  const first = issues[0] ?? { field: where, message: 'invalid' };
  return apiError('invalid_request', `${first.field}: ${first.message}`, { field: first.field, issues });
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export function parseWith<S extends z.ZodType>(schema: S, where: string, value: unknown): Parsed<z.infer<S>> {
  const r = schema.safeParse(value);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: zodError(where, r.error) };
}

/** Deepest nesting accepted in a JSON body: far beyond any real workflow, far below what would
 *  overflow the stack of a recursive walk (JSON.stringify, zod, the store). */
export const MAX_JSON_DEPTH = 256;

/** The path (as `where.a.0.b`, cut to its first 8 segments) of the first value nested deeper than
 *  `max`, or null. Iterative: a 100k-deep value cannot overflow it. */
export function tooDeep(value: unknown, where: string, max: number = MAX_JSON_DEPTH): string | null {
  const stack: Array<{ v: unknown; depth: number; path: string[] }> = [{ v: value, depth: 0, path: [] }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return [where, ...path.slice(0, 7)].join('.') + (path.length > 7 ? '…' : '');
    const short = path.length < 8;
    for (const [k, child] of Object.entries(v)) {
      if (typeof child === 'object' && child !== null) {
        stack.push({ v: child, depth: depth + 1, path: short ? [...path, k] : path });
      }
    }
  }
  return null;
}

const SECRET_FLAG = /^--?[\w-]*(token|secret|password|passwd|api[-_]?key)[\w-]*$/i;

/** argv for /system_stats with the value of every secret-looking flag (`--token x`, `--token=x`)
 *  replaced by `<redacted>`. */
export function redactArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    if (eq > 0 && SECRET_FLAG.test(a.slice(0, eq))) out.push(`${a.slice(0, eq)}=<redacted>`);
    else if (SECRET_FLAG.test(a) && i + 1 < argv.length) {
      out.push(a, '<redacted>');
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * The prompt resource: POST /prompt queues a workflow (a ComfyUI API-format prompt or a priorgraph
 * document), GET /prompt answers the queue size. queuePrompt is the one path into the queue; the
 * native POST /api/workflows/run (./native.ts) takes it too.
 */
import { validateWorkflow } from '@priorgraph/core';
import { type Router, Router as router } from 'express';
import { newPromptId, type ServerContext } from '../context.js';
import { apiError, PromptBody } from '../schemas.js';
import { DuplicateJobError } from '../store.js';
import { normalizeWorkflow } from '../workflow.js';
import { both, parsedOr400 } from './http.js';

export interface PromptInput {
  prompt: unknown;
  prompt_id?: string;
  client_id?: string;
  number?: number;
  front?: boolean;
  extra_data?: Record<string, unknown>;
  targets?: string[];
}

export type Queued =
  | { ok: true; prompt_id: string; number: number; node_errors: Record<string, unknown> }
  | { ok: false; status: number; body: unknown };

/** Normalize, validate and enqueue; a refusal comes back with its HTTP status and body. */
export async function queuePrompt(ctx: ServerContext, input: PromptInput): Promise<Queued> {
  const { registry, host, store } = ctx;
  // in a burst, prompts beyond this turn's share wait for a later turn (what arrived meanwhile first)
  const wait = ctx.turns.enter();
  if (wait) await wait;
  const norm = normalizeWorkflow(input.prompt, registry);
  if (!norm.ok) return { ok: false, status: 400, body: apiError(norm.type, norm.message, { field: 'prompt' }) };
  const v = await validateWorkflow(norm.doc, registry, host, {
    outputs: input.targets,
    memoryBudgetBytes: ctx.options.memoryBudgetBytes,
  });
  if (!v.ok) {
    const error = v.error ?? {
      type: 'prompt_outputs_failed_validation',
      message: 'Prompt outputs failed validation',
      details: '',
      extra_info: {},
    };
    return { ok: false, status: 400, body: { error, node_errors: v.node_errors } };
  }
  const id = input.prompt_id ?? newPromptId();
  const extraData = { ...(input.extra_data ?? {}), ...(input.client_id ? { client_id: input.client_id } : {}) };
  let number: number;
  const unclaim = ctx.hub.claim(id, input.client_id);
  try {
    number = await store.enqueue({
      id,
      number: input.number,
      front: input.front,
      prompt: norm.prompt,
      document: norm.doc as unknown as Record<string, unknown>,
      extraData,
      outputs: v.outputs,
      clientId: input.client_id,
    });
  } catch (e) {
    unclaim();
    if (!(e instanceof DuplicateJobError)) throw e;
    const body = apiError('duplicate_prompt_id', e.message, { field: 'prompt_id', prompt_id: id });
    return { ok: false, status: 409, body };
  }
  ctx.hub.noteSubmission(id, input.client_id);
  await ctx.refreshQueue();
  ctx.runner.kick();
  return { ok: true, prompt_id: id, number, node_errors: v.node_errors };
}

export function promptRouter(ctx: ServerContext): Router {
  const r = router();
  r.post(both('/prompt'), async (req, res) => {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('prompt' in body)) {
      res.status(400).json(apiError('no_prompt', 'No prompt provided', { field: 'prompt' }));
      return;
    }
    const b = parsedOr400(res, PromptBody, 'body', body);
    if (!b) return;
    const q = await queuePrompt(ctx, {
      prompt: b.prompt,
      prompt_id: b.prompt_id,
      client_id: b.client_id,
      number: b.number,
      front: b.front,
      extra_data: b.extra_data,
      targets: b.partial_execution_targets,
    });
    if (!q.ok) {
      res.status(q.status).json(q.body);
      return;
    }
    res.json({ prompt_id: q.prompt_id, number: q.number, node_errors: q.node_errors });
  });

  r.get(both('/prompt'), (_req, res) => {
    res.json({ exec_info: { queue_remaining: ctx.queueRemaining } });
  });
  return r;
}

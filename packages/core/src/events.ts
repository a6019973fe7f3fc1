/** What a run reports: the typed events the executor emits and the result it returns. */
import type { PreviewImage, UiOutput } from './api.js';
import type { ValidationResult } from './validate.js';

export type ExecutionEvent =
  | { type: 'execution_start'; promptId: string }
  | { type: 'execution_cached'; promptId: string; nodes: string[] }
  | { type: 'node_start'; promptId: string; nodeId: string; nodeType: string }
  | { type: 'progress'; promptId: string; nodeId: string; value: number; max: number }
  | { type: 'preview'; promptId: string; nodeId: string; image: PreviewImage }
  | { type: 'node_output'; promptId: string; nodeId: string; nodeType: string; ui: UiOutput }
  | {
      type: 'error';
      promptId: string;
      /** null for a prompt-level error (e.g. failed validation). */
      nodeId: string | null;
      nodeType: string | null;
      message: string;
      errorType: string;
      stack?: string;
      executed: string[];
      inputs?: Record<string, unknown>;
    }
  | { type: 'interrupted'; promptId: string; nodeId?: string; nodeType?: string; executed: string[] }
  | { type: 'success'; promptId: string; executed: string[]; outputs: Record<string, UiOutput> };

export type ExecutionEventType = ExecutionEvent['type'];

export interface RunError {
  nodeId: string | null;
  nodeType: string | null;
  message: string;
  /** The thrown error's name ('Error', 'TypeError', ...), or 'validation_failed', 'invalid_document'. */
  errorType: string;
  stack?: string;
  /** Present when the run was refused by validation. */
  validation?: ValidationResult;
}

export interface RunResult {
  status: 'success' | 'error' | 'interrupted';
  /** Nodes that ran, in completion order. */
  executed: string[];
  /** Nodes served from the cache. */
  cached: string[];
  /** UI output of every node that produced one (executed or cached). */
  outputs: Record<string, UiOutput>;
  error?: RunError;
}

/** A thrown value as an error report (non-Error throws are named as such). */
export function errorInfo(e: unknown): { message: string; errorType: string; stack?: string } {
  if (e instanceof Error) return { message: e.message || e.name, errorType: e.name || 'Error', stack: e.stack };
  let message: string;
  try {
    message = typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
  } catch {
    message = Object.prototype.toString.call(e);
  }
  return { message: `non-Error thrown: ${message}`, errorType: 'NonErrorThrown' };
}

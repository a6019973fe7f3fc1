/**
 * The floor of a cached re-run: what executor.bench's cached re-run must do per node, written with
 * no priorgraph code, for the bench's documents. Per node: read it from the caller's node dictionary
 * into a fresh copy (the parser's contract), index its id, hash a text of its type, mode, literals and
 * its sources' hashes (sha1, as signing does; document order is dependency order in these DAGs), and
 * look the hash up in a cache of 16 Maps. No validation, no plan objects, no events. How this grows
 * from 1k to 10k nodes is what V8 and this machine charge for the size of the data alone.
 */
import { hash } from 'node:crypto';
import type { WorkflowDocument } from '../packages/core/src/index.js';

/** The bench nodes' input names, sorted. */
const NAMES = ['a', 'b', 'v', 'x'];

function fnv(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** One "run" over `doc`; stores hashes it has not seen in `cache`, returns how many it had. */
export function floorRun(doc: WorkflowDocument, cache: Array<Map<string, unknown>>): number {
  const ids: string[] = [];
  const nodes: Array<{ type: string; version: number; mode: string; inputs: Record<string, unknown> }> = [];
  for (const id in doc.nodes) {
    const n = doc.nodes[id];
    if (typeof n.type !== 'string' || typeof n.mode !== 'string') throw new Error(`node ${id}: not a node`);
    ids.push(id);
    nodes.push({ type: n.type, version: n.version, mode: n.mode, inputs: { ...n.inputs } });
  }
  let size = 16;
  while (size < ids.length * 2) size *= 2;
  const table = new Int32Array(size);
  const mask = size - 1;
  for (let i = 0; i < ids.length; i++) {
    let h = fnv(ids[i]) & mask;
    while (table[h] !== 0) h = (h + 1) & mask;
    table[h] = i + 1;
  }
  const find = (id: string) => {
    for (let h = fnv(id) & mask; ; h = (h + 1) & mask) {
      if (table[h] === 0) throw new Error(`no node ${id}`);
      if (ids[table[h] - 1] === id) return table[h] - 1;
    }
  };
  const sigs: string[] = new Array(ids.length);
  let hits = 0;
  for (let i = 0; i < ids.length; i++) {
    const n = nodes[i];
    let s = `${n.type}\u0000${n.version}\u0000${n.mode}`;
    for (const k of NAMES) {
      const v = n.inputs[k] as { node: string; output: string } | number | undefined;
      if (typeof v === 'object') s = `${s}\u0000${k}=@${sigs[find(v.node)]}:${v.output}`;
      else if (v !== undefined) s = `${s}\u0000${k}=${v}`;
    }
    const sig = hash('sha1', s, 'base64');
    sigs[i] = sig;
    const m = cache[sig.charCodeAt(0) & 15];
    if (m.has(sig)) hits++;
    else m.set(sig, n);
  }
  return hits;
}

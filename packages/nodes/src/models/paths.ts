/**
 * Model (and input image) paths are confined to configured roots: a relative path is resolved against
 * each root in turn; an absolute path, a `..` traversal or a symlink that lands outside every root is
 * refused. Errors name the node input.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { HostInfo } from '@priorgraph/core';

export function isInside(child: string, root: string): boolean {
  const rel = relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/** Resolve `p` inside one of `roots`. Throws an Error whose message names `input`. */
export function confinePath(p: string, roots: readonly string[], input: string, what = 'model'): string {
  if (typeof p !== 'string' || p.trim() === '') throw new Error(`input "${input}": no ${what} path given`);
  if (!roots.length) throw new Error(`input "${input}": no ${what} roots are configured`);
  const candidates = isAbsolute(p) ? [resolve(p)] : roots.map((r) => resolve(r, p));
  let sawOutside = false;
  for (const c of candidates) {
    const lexicalRoot = roots.find((r) => isInside(c, resolve(r)));
    if (!lexicalRoot) {
      sawOutside = true;
      continue;
    }
    if (!existsSync(c)) continue;
    const real = realpathSync(c);
    const realRoots = roots.filter((r) => existsSync(r)).map((r) => realpathSync(r));
    if (!realRoots.some((r) => isInside(real, r))) {
      throw new Error(
        `input "${input}": ${what} path "${p}" resolves (through a symlink) to ${real}, outside the ${what} roots`,
      );
    }
    return real;
  }
  if (sawOutside)
    throw new Error(`input "${input}": ${what} path "${p}" is outside the ${what} roots (${roots.join(', ')})`);
  throw new Error(`input "${input}": ${what} file not found: "${p}" (looked in ${roots.join(', ')})`);
}

export function modelRoots(host: HostInfo): readonly string[] {
  return host.modelRoots;
}

/** Walk the model roots (depth ≤ 5): diffusers folders (with model_index.json) and .onnx files,
 *  as paths relative to their root, sorted. */
export function scanModels(host: HostInfo): { folders: string[]; files: string[] } {
  const folders = new Set<string>();
  const files = new Set<string>();
  for (const root of host.modelRoots) {
    if (!existsSync(root)) continue;
    const walk = (dir: string, depth: number) => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      if (entries.includes('model_index.json')) folders.add(relative(root, dir) || '.');
      for (const e of entries) {
        if (e.startsWith('.') || e === 'node_modules') continue;
        const full = join(dir, e);
        let st: ReturnType<typeof statSync>;
        try {
          st = statSync(full);
        } catch {
          continue;
        }
        if (st.isDirectory() && depth < 5) walk(full, depth + 1);
        else if (st.isFile() && e.endsWith('.onnx')) files.add(relative(root, full));
      }
    };
    walk(root, 0);
  }
  return { folders: [...folders].sort(), files: [...files].sort() };
}

/**
 * Model (and input image) paths are confined to configured roots: a relative path is resolved against
 * each root in turn; an absolute path, a `..` traversal or a symlink that lands outside every root is
 * refused. Errors name the node input.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
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

/** What a loader needs: a whole pipeline folder, a denoiser (folder or .onnx file), a CLIP (tokenizer
 *  and text encoder), a VAE, an image encoder (CLIP vision: image_encoder/). */
export type ModelRole = 'pipeline' | 'denoiser' | 'clip' | 'vae' | 'clip_vision';

const DENOISER_DIRS = ['unet', 'transformer'];
/** diffusers component folders that hold something other than a denoiser */
const OTHER_COMPONENT_DIRS = [
  'text_encoder',
  'text_encoder_2',
  'vae_encoder',
  'vae_decoder',
  'safety_checker',
  'image_encoder',
  'cc_projection',
  'image_projection',
];
/** the input names a denoiser network takes its timestep by (see signature.ts) */
const TIMESTEP_NAMES = ['timestep', 'timesteps'];
const PROBE_BYTES = 64 * 1024 * 1024;
const probeCache = new Map<string, boolean>();

/** Does a standalone .onnx file take a timestep input? Its graph's input names are stored as plain
 *  strings in the protobuf; read at most the first 64 MiB (graph inputs follow the weights only in
 *  files too large to list quickly, which then stay listed). */
function takesTimestep(file: string): boolean {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    return false;
  }
  const key = `${file}:${st.size}:${st.mtimeMs}`;
  const known = probeCache.get(key);
  if (known !== undefined) return known;
  let found = st.size > PROBE_BYTES;
  if (!found) {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(st.size);
      readSync(fd, buf, 0, st.size, 0);
      found = TIMESTEP_NAMES.some((n) => buf.includes(n));
    } finally {
      closeSync(fd);
    }
  }
  probeCache.set(key, found);
  return found;
}

function hasDir(dir: string, names: string[]): boolean {
  return names.some((n) => existsSync(join(dir, n)));
}

/** The models under the roots that can fill `role`, read from their layout (the component folders a
 *  diffusers folder has) and, for a lone .onnx file, its signature (a timestep input makes it a
 *  denoiser). */
export function modelsFor(host: HostInfo, role: ModelRole): string[] {
  const { folders, files } = scanModels(host);
  const abs = (p: string) => host.modelRoots.map((r) => resolve(r, p)).find((c) => existsSync(c)) ?? p;
  const folderOk = (f: string) => {
    const d = abs(f);
    if (role === 'clip') return hasDir(d, ['tokenizer']) && hasDir(d, ['text_encoder']);
    if (role === 'vae') return hasDir(d, ['vae_decoder']);
    if (role === 'clip_vision') return hasDir(d, ['image_encoder']);
    return hasDir(d, DENOISER_DIRS);
  };
  const out = folders.filter(folderOk);
  if (role === 'clip_vision') out.push(...files.filter((f) => basename(dirname(abs(f))) === 'image_encoder'));
  if (role === 'denoiser') {
    for (const f of files) {
      const parent = basename(dirname(abs(f)));
      if (DENOISER_DIRS.includes(parent)) out.push(f);
      else if (!OTHER_COMPONENT_DIRS.includes(parent) && takesTimestep(abs(f))) out.push(f);
    }
  }
  return out;
}

/**
 * Confinement of user-supplied file names to a base directory (/view, /upload/image, outputs).
 * The check is lexical first (no `..` segment, no absolute path, no NUL, no backslash, no drive
 * letter) so that a traversal attempt is refused before the filesystem is touched; the resolved
 * path must then lie inside the base directory.
 */
import { type Dirent, readdirSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

export class UnsafePathError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsafePathError';
  }
}

const BAD_CHARS = /[\\:<>|"?*]/;

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 32 || s.charCodeAt(i) === 127) return true;
  return false;
}

/** Checks one relative path given by a client (a subfolder may contain `/`, a filename may not). */
export function checkRelative(field: string, value: string, allowSlash: boolean): string {
  if (value.length > 1024) throw new UnsafePathError(field, `${field} is too long`);
  if (BAD_CHARS.test(value) || hasControlChar(value))
    throw new UnsafePathError(field, `${field} contains a forbidden character`);
  if (isAbsolute(value) || value.startsWith('/')) throw new UnsafePathError(field, `${field} must be a relative path`);
  const parts = value.split('/');
  if (!allowSlash && parts.length > 1) throw new UnsafePathError(field, `${field} may not contain "/"`);
  for (const p of parts) {
    if (p === '..' || p === '.') throw new UnsafePathError(field, `${field} may not contain "${p}" segments`);
  }
  return parts.filter((p) => p !== '').join('/');
}

/** Resolves `<base>/<subfolder>/<filename>` after checking both parts; throws UnsafePathError. */
export function confinedPath(base: string, subfolder: string, filename: string): string {
  const sub = checkRelative('subfolder', subfolder, true);
  const name = checkRelative('filename', filename, false);
  if (name === '') throw new UnsafePathError('filename', 'filename is empty');
  const root = resolve(base);
  const full = resolve(join(root, sub, name));
  const rel = relative(root, full);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new UnsafePathError('filename', 'path leaves its directory');
  return full;
}

/** After the file exists: true when its real path (symlinks resolved) is still inside `base`. */
export function realpathInside(base: string, full: string): boolean {
  try {
    const root = realpathSync(base);
    const real = realpathSync(full);
    return real === root || real.startsWith(root + sep);
  } catch {
    return false;
  }
}

/** A file name safe on every platform: keeps letters, digits, `._-` and spaces, at most 200 chars. */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .replace(/[^A-Za-z0-9._\- ()]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 200);
  return cleaned === '' ? 'upload' : cleaned;
}

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export function mimeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  return MIME[dot >= 0 ? file.slice(dot).toLowerCase() : ''] ?? 'application/octet-stream';
}

/** A directory's entries, or none when it is missing or unreadable. */
export function dirEntries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

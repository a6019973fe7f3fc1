/**
 * Output files carried between machines through Redis: read from the folders of the process that
 * wrote them (a worker sending a result back, a server sharing a finished job with the other
 * servers), base64 in JSON, and written into the receiver's own folders, paths confined there.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger, UiOutput } from '@priorgraph/core';
import { confinedPath } from '../paths.js';

export interface CarriedFile {
  type: 'output' | 'temp';
  subfolder: string;
  filename: string;
  data: string; // base64
}

export interface OutputDirs {
  outputDir: string;
  tempDir: string;
}

/** Files named by a result's UI outputs (images with type output/temp), read to travel. */
export function carriedFiles(dirs: OutputDirs, outputs: Record<string, UiOutput>, log: Logger): CarriedFile[] {
  const files: CarriedFile[] = [];
  for (const ui of Object.values(outputs)) {
    const images = (ui as { images?: Array<{ filename?: string; subfolder?: string; type?: string }> }).images;
    if (!Array.isArray(images)) continue;
    for (const img of images) {
      if (typeof img?.filename !== 'string' || (img.type !== 'output' && img.type !== 'temp')) continue;
      const base = img.type === 'temp' ? dirs.tempDir : dirs.outputDir;
      try {
        const data = readFileSync(confinedPath(base, img.subfolder ?? '', img.filename)).toString('base64');
        files.push({ type: img.type, subfolder: img.subfolder ?? '', filename: img.filename, data });
      } catch (e) {
        log.error(`output ${img.filename} cannot be read to send: ${(e as Error).message}`);
      }
    }
  }
  return files;
}

/** Carried files into this process's folders (paths confined); a file that cannot be written is logged. */
export function writeCarriedFiles(dirs: OutputDirs, id: string, files: CarriedFile[], log: Logger): void {
  for (const f of files) {
    try {
      const base = f.type === 'temp' ? dirs.tempDir : dirs.outputDir;
      const full = confinedPath(base, f.subfolder, f.filename);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, Buffer.from(f.data, 'base64'));
    } catch (e) {
      log.error(`job ${id}: could not store output ${f.filename}: ${(e as Error).message}`);
    }
  }
}

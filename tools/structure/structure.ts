/**
 * Structure checks over packages/*\/src, read with the TypeScript compiler's parser: import cycles
 * between modules (value and type imports; `@priorgraph/<pkg>` resolves to that package's
 * src/index.ts), and the length of every function. Run: node --import tsx tools/structure/structure.ts
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { tarjan } from '../../packages/core/src/validate.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Every .ts file under packages/<pkg>/src, relative to the repo root. */
export function sourceFiles(root = ROOT): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(relative(root, p));
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    if (existsSync(src)) walk(src);
  }
  return out.sort();
}

function parse(file: string, root: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true);
}

function resolveImport(from: string, spec: string, root: string): string | null {
  let target: string;
  if (spec.startsWith('@priorgraph/')) target = join('packages', spec.slice('@priorgraph/'.length), 'src/index.ts');
  else if (spec.startsWith('.')) target = join(dirname(from), spec).replace(/\.js$/, '.ts');
  else return null;
  if (!target.endsWith('.ts')) target += '.ts';
  return existsSync(join(root, target)) ? target : null;
}

/** The module graph: file → the files it imports or re-exports from. */
export function importGraph(root = ROOT): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sourceFiles(root)) {
    const deps: string[] = [];
    for (const st of parse(f, root).statements) {
      const spec =
        (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier
          ? (st.moduleSpecifier as ts.StringLiteral).text
          : null;
      const t = spec ? resolveImport(f, spec, root) : null;
      if (t && t !== f) deps.push(t);
    }
    g.set(f, deps);
  }
  return g;
}

/** The modules that lie on an import cycle (core's cycle finder, the one validation uses). */
export function importCycles(g: Map<string, string[]>): string[] {
  return [...tarjan([...g.keys()], g)].sort();
}

export interface FunctionLength {
  /** `file:name` (anonymous functions are named by their line) */
  key: string;
  lines: number;
}

/** Every function, method, arrow function and class constructor with its length in lines. */
export function functionLengths(root = ROOT): FunctionLength[] {
  const out: FunctionLength[] = [];
  for (const f of sourceFiles(root)) {
    const sf = parse(f, root);
    const visit = (n: ts.Node) => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const start = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
        const named = (n as { name?: ts.Node }).name;
        let name = named ? named.getText(sf) : '';
        if (!name && ts.isVariableDeclaration(n.parent)) name = n.parent.name.getText(sf);
        if (!name && ts.isPropertyAssignment(n.parent)) name = n.parent.name.getText(sf);
        out.push({ key: `${f}:${name || `<line ${start + 1}>`}`, lines: end - start + 1 });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  for (const m of importCycles(importGraph())) console.log(`on an import cycle: ${m}`);
  for (const f of functionLengths()
    .filter((x) => x.lines > 120)
    .sort((a, b) => b.lines - a.lines)) {
    console.log(`${f.lines} lines: ${f.key}`);
  }
}

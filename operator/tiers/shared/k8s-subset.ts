// The L1 classes the builders use, cut out of cdk8s-plus-27's generated k8s imports
// (lib/imports/k8s.js, 2.5 MB: every kind of Kubernetes 1.27 and a toJson function per
// struct) for ~20 classes the operator calls. Measured after gc(): Node loading the whole
// module holds 7.2 MiB more heap than the subset (13.6 against 6.4 MiB with cdk8s); inside the
// minified bundle the difference is 0.7 MiB of heap. The subset is the same code, statement
// for statement, with only what the used names reach.
// Produced at build time from the installed package, never committed: `npm run bundle` runs
// `npm run gen:k8s` (this module, under plain node), which writes SUBSET_FILE, and bundles
// with the condition under which package.json's "#k8s" import names that file (k8s.ts).
// Everywhere else (tsx, vitest, tsc) "#k8s" is the library's own module.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import type * as TS from 'typescript';

// Loaded with require, which honours NODE_PATH: the operator image's build stage has
// TypeScript beside esbuild, outside the production node_modules it bundles from.
const ts = createRequire(import.meta.url)('typescript') as typeof TS;

export const L1_MODULE = 'cdk8s-plus-27/lib/imports/k8s.js';
const OPERATOR = join(import.meta.dirname, '..', '..');
/** Where the bundle finds the subset (package.json imports "#k8s", condition SUBSET_CONDITION). */
export const SUBSET_FILE = join(OPERATOR, '..', 'dist', 'build', 'k8s-l1.ts');
export const SUBSET_CONDITION = 'scalable-subset';

/** Names used as `k8s.Name` anywhere in the operator's sources (tests included). */
export function usedNames(root = OPERATOR): string[] {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/\bk8s\.([A-Z]\w*)/g))
          if (m[1]) names.add(m[1]);
    }
  };
  walk(root);
  return [...names].sort();
}

const isTemp = (n: string) => /^_[a-z0-9]+$/.test(n);

/**
 * The statements of `source` (CommonJS, as cdk8s generates it) that `roots` reach, as one ES
 * module exporting each root with the library's own declared type. Names that are types only
 * in the library (interfaces) are re-exported as types.
 */
export function subsetModule(source: string, roots: readonly string[], header: string): string {
  const sf = ts.createSourceFile('k8s.js', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const stmts = sf.statements;
  const declared = new Map<string, number>();
  stmts.forEach((st, i) => {
    if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && st.name)
      declared.set(st.name.text, i);
    else if (ts.isVariableStatement(st))
      for (const d of st.declarationList.declarations) declared.set(d.name.getText(), i);
  });
  const idents = (node: TS.Node): Set<string> => {
    const out = new Set<string>();
    const walk = (n: TS.Node) => {
      if (ts.isIdentifier(n)) out.add(n.text);
      ts.forEachChild(n, walk);
    };
    walk(node);
    return out;
  };
  const isExportsLine = (st: TS.Statement) =>
    ts.isExpressionStatement(st) &&
    /^(exports\.|Object\.defineProperty\(exports)/.test(st.getText());
  // Statements after a declaration that belong to it: `X.GVK = ...`, `X[_q] = {fqn...}`.
  const belongs = new Map<string, number[]>();
  stmts.forEach((st, i) => {
    if (!ts.isExpressionStatement(st) || isExportsLine(st)) return;
    for (const n of idents(st)) {
      if (!declared.has(n) || isTemp(n) || n === 'JSII_RTTI_SYMBOL_1' || n === 'cdk8s_1') continue;
      belongs.set(n, [...(belongs.get(n) ?? []), i]);
    }
  });
  const keep = new Set<number>();
  const exported: string[] = [];
  const seen = new Set<string>();
  const queue = [...roots];
  for (let n = queue.pop(); n !== undefined; n = queue.pop()) {
    if (seen.has(n)) continue;
    seen.add(n);
    const i = declared.get(n);
    if (i === undefined) continue; // an interface: types only
    if (roots.includes(n)) exported.push(n);
    for (const j of [i, ...(belongs.get(n) ?? [])]) {
      keep.add(j);
      const st = stmts[j];
      if (st)
        for (const id of idents(st))
          if (declared.has(id) && !isTemp(id) && !seen.has(id)) queue.push(id);
    }
  }
  const fromCdk8s = new Set<string>();
  const body: string[] = [];
  stmts.forEach((st, i) => {
    const text = st.getText();
    const next = stmts[i + 1];
    if (ts.isVariableStatement(st) && text.startsWith('var _a,')) body.push(text);
    else if (text.startsWith('const JSII_RTTI_SYMBOL_1')) body.push(text);
    // `_q = JSII_RTTI_SYMBOL_1;` sets up the statement after it.
    else if (/^_\w+ = JSII_RTTI_SYMBOL_1;$/.test(text)) {
      if (next && keep.has(i + 1)) body.push(text);
    } else if (keep.has(i) && !isExportsLine(st) && !text.includes('require(')) {
      for (const m of text.matchAll(/\bcdk8s_1\.(\w+)/g)) if (m[1]) fromCdk8s.add(m[1]);
      body.push(text);
    }
  });
  exported.sort();
  const cdk8sNames = [...fromCdk8s].sort();
  return [
    header,
    '// @ts-nocheck',
    `import { ${cdk8sNames.join(', ')} } from 'cdk8s';`,
    `import type * as L1 from '${L1_MODULE}';`,
    `export type * from '${L1_MODULE}';`,
    '',
    `const cdk8s_1 = { ${cdk8sNames.join(', ')} };`,
    'const l1 = (() => {',
    ...body,
    `  return { ${exported.join(', ')} };`,
    '})();',
    '',
    ...exported.flatMap((n) => [
      `export const ${n}: typeof L1.${n} = l1.${n};`,
      `export type ${n} = L1.${n};`,
    ]),
    '',
  ].join('\n');
}

/** The subset module for the names the operator uses now. */
export function generateSubset(): string {
  const require = createRequire(import.meta.url);
  const path = require.resolve(L1_MODULE);
  const pkg = JSON.parse(readFileSync(require.resolve('cdk8s-plus-27/package.json'), 'utf8')) as {
    version: string;
  };
  const header = [
    `// Generated by \`npm run gen:k8s\` (operator/tiers/shared/k8s-subset.ts) from cdk8s-plus-27`,
    `// ${pkg.version} ${relative(join(OPERATOR, '..', 'node_modules'), path)}: the classes the operator uses`,
    '// and what they reach, nothing else. Do not edit.',
  ].join('\n');
  return subsetModule(readFileSync(path, 'utf8'), usedNames(), header);
}

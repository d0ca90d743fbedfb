// `npm run gen:chart`: writes the generated files of charts/ (see chart-files.ts) and
// manifests/install.yaml (helm template of the chart's defaults, see chart-install.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chartFiles } from './chart-files.ts';
import { INSTALL_MANIFEST, renderInstallManifest } from './chart-install.ts';

const root = join(import.meta.dirname, '..');
const write = (path: string, content: string) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
  console.log(`wrote ${path}`);
};
for (const [path, content] of Object.entries(chartFiles())) write(path, content);
write(INSTALL_MANIFEST, renderInstallManifest());

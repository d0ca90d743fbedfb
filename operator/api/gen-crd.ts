// Writes crds/scalableapps.scalable.dev.yaml from the TypeScript schema (`npm run gen:crd`).
import { writeFileSync } from 'node:fs';
import { crdPath, crdYaml } from './crd-file.ts';

writeFileSync(crdPath, crdYaml());
console.log(`wrote ${crdPath}`);

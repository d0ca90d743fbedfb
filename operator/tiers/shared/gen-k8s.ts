// `npm run gen:k8s` (plain node, as the operator image's build stage runs it): writes the L1
// subset the bundle uses (see k8s-subset.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SUBSET_FILE, generateSubset } from './k8s-subset.ts';

mkdirSync(dirname(SUBSET_FILE), { recursive: true });
writeFileSync(SUBSET_FILE, generateSubset());
console.log(`wrote ${SUBSET_FILE}`);

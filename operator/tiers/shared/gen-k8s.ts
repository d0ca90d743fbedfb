// `npm run gen:k8s`: writes k8s-l1.ts, the L1 classes the builders use (see k8s-subset.ts).
import { writeFileSync } from 'node:fs';
import { SUBSET_FILE, generateSubset } from './k8s-subset.ts';

writeFileSync(SUBSET_FILE, generateSubset());
console.log(`wrote ${SUBSET_FILE}`);

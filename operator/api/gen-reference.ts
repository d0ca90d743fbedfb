// Writes docs/reference.md from the schema and the rule table (`npm run gen:reference`).
import { writeFileSync } from 'node:fs';
import { referencePath, referenceText } from './reference-file.ts';

writeFileSync(referencePath, referenceText());
console.log(`wrote ${referencePath}`);

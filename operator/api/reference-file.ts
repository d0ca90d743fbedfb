// Where the generated API reference lives, and its text (`npm run gen:reference` writes it).
import { fileURLToPath } from 'node:url';
import { referenceMarkdown } from './reference.ts';

export const referencePath = fileURLToPath(new URL('../../docs/reference.md', import.meta.url));

export function referenceText(): string {
  return referenceMarkdown();
}

// An app pod's mounted CA (ca.crt of a Secret volume) as the kubelet lays it out and updates
// it: ca.crt -> ..data/ca.crt, ..data -> a dated directory swapped by one rename. Used to
// show the SDK's clients following a CA move (sdk/src/ca-file.ts).
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CaVolume {
  /** The path the pod's env names (REDIS_SSLROOTCERT, DATABASE_SSLROOTCERT, ...). */
  readonly file: string;
  /** The kubelet's update: the new text appears at `file` in one step. */
  swap(text: string): void;
  remove(): void;
}

export function caVolume(first: string): CaVolume {
  const dir = mkdtempSync(join(tmpdir(), 'ca-volume-'));
  let n = 0;
  const swap = (text: string) => {
    const dated = join(dir, `..v${n++}`);
    mkdirSync(dated);
    writeFileSync(join(dated, 'ca.crt'), text);
    symlinkSync(dated, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  swap(first);
  symlinkSync(join('..data', 'ca.crt'), join(dir, 'ca.crt'));
  return {
    file: join(dir, 'ca.crt'),
    swap,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// Read-your-writes tokens: per shard, the WAL position (LSN) a session's last write reached
// on that shard's primary. A replica whose replay position is at or past it has the write;
// one that is behind would answer as if the write never happened. The token is a short
// string so an app can keep it where it keeps the user's session (a cookie, Redis).

/** A Postgres LSN ('16/B374D848', the pg_lsn text form) as a number that compares. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text);
  if (!m) throw new TypeError(`not a Postgres LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Shard index -> the LSN a session's writes reached on that shard. */
export type WritePositions = ReadonlyMap<number, bigint>;

/**
 * `0=0/3000060,1=0/1A2B3C8`: shard index = LSN, one pair per shard written to. A token the
 * app stored itself that does not parse is an error, not "no token": treating it as none
 * would quietly drop the guarantee.
 */
export function parseWriteToken(token: string | undefined): Map<number, bigint> {
  const positions = new Map<number, bigint>();
  if (token === undefined || token === '') return positions;
  for (const pair of token.split(',')) {
    const m = /^(\d{1,6})=(.+)$/.exec(pair);
    if (!m) throw new TypeError(`not a write token: ${JSON.stringify(token)}`);
    const shard = Number(m[1]);
    const lsn = parseLsn(m[2] ?? '');
    if ((positions.get(shard) ?? -1n) < lsn) positions.set(shard, lsn);
  }
  return positions;
}

export function formatWriteToken(positions: WritePositions): string | undefined {
  if (positions.size === 0) return undefined;
  return [...positions]
    .sort(([a], [b]) => a - b)
    .map(([shard, lsn]) => `${shard}=${formatLsn(lsn)}`)
    .join(',');
}

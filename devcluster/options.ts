// Options shared by the CLI, the programmatic API and the vitest global setup.

/**
 * Optional upstream CRDs are on unless --no-optional-crds is given or
 * SCALABLE_NO_OPTIONAL_CRDS is set to 1/true (for testing the operator on a bare cluster).
 */
export function optionalCrdsWanted(
  argv: readonly string[] = process.argv,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (argv.includes('--no-optional-crds')) return false;
  const v = env['SCALABLE_NO_OPTIONAL_CRDS'];
  return !(v === '1' || v === 'true');
}

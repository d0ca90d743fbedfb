// Imports run one way (DESIGN.md): api <- tiers <- reconcile/status <- runtime <- main, with
// cli beside runtime, engines/ (what several tiers run) between tiers/shared/ and the tiers
// that use them, and ports/ (the client and log interfaces) under all of them; the SDK's
// contract depends on nothing of the operator. The runtime, the reconciler and the status
// computation name no tier: they reach tiers through the registry (tiers/index.ts) and the
// Tier interface (tiers/tier.ts, tiers/watch.ts). Type-only imports count: a circle of types
// is still a circle in the design. Run by `npm run lint`.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles hide which module owns what; move the shared piece down a layer.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'api-is-the-bottom',
      severity: 'error',
      from: { path: '^operator/api/' },
      to: { path: '^operator/(tiers|reconcile|status|runtime|cli)/' },
    },
    {
      name: 'ports-are-the-bottom',
      severity: 'error',
      comment: 'The interfaces every layer uses import nothing of the operator.',
      from: { path: '^operator/ports/' },
      to: { path: '^operator/(?!ports/)' },
    },
    {
      name: 'no-tier-by-name',
      severity: 'error',
      comment:
        'A tier that needs a watch or metrics gets them through Tier.watches (tiers/watch.ts): ' +
        'the runtime, reconciler and status reach tiers only through the registry and the ' +
        'Tier interface (tiers/*.ts) and tiers/shared/.',
      from: { path: '^operator/(runtime|reconcile|status)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^operator/(tiers/(?!shared/)[^/]+/|engines/)' },
    },
    {
      name: 'engines-serve-tiers',
      severity: 'error',
      comment:
        'An engine (operator/engines/<e>/) is what several tiers run; it builds on tiers/shared/ ' +
        'and the Tier interface, never on one tier, and never talks to the cluster.',
      from: { path: '^operator/engines/' },
      to: { path: '^operator/(tiers/(?!shared/)[^/]+/|reconcile/|status/|runtime/|cli/)' },
    },
    {
      name: 'shared-below-engines',
      severity: 'error',
      comment: 'tiers/shared/ holds what every tier uses; an engine serves some tiers only.',
      from: { path: '^operator/tiers/shared/' },
      to: { path: '^operator/(engines|tiers/(?!shared/)[^/]+)/' },
    },
    {
      name: 'tiers-build-on-api-only',
      severity: 'error',
      comment: 'Builders never talk to the cluster: hooks get a ClusterAccess from the reconciler.',
      from: { path: '^operator/tiers/' },
      to: { path: '^operator/(reconcile|status|runtime|cli)/' },
    },
    {
      name: 'status-is-pure',
      severity: 'error',
      from: { path: '^operator/status/' },
      to: { path: '^operator/(reconcile|runtime|cli)/' },
    },
    {
      name: 'reconcile-below-the-runtime',
      severity: 'error',
      comment: 'The client and log interfaces it needs are ports (operator/ports/).',
      from: { path: '^operator/reconcile/' },
      to: { path: '^operator/(cli|runtime)/' },
    },
    {
      name: 'contract-stands-alone',
      severity: 'error',
      from: { path: '^sdk/src/contract/' },
      to: { path: '^(operator|sdk/src/(?!contract/))' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

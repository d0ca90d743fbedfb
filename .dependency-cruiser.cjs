// Imports run one way (DESIGN.md): api <- tiers <- reconcile/status <- runtime <- main, with
// cli beside runtime; the SDK's contract depends on nothing of the operator. Type-only imports
// count: a circle of types is still a circle in the design. Run by `npm run lint`.
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
      name: 'reconcile-below-the-controller',
      severity: 'error',
      from: { path: '^operator/reconcile/' },
      to: { path: '^operator/(cli/|runtime/controller\\.ts)' },
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

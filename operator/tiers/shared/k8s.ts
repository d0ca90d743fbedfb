// The typed L1 constructs generated from the Kubernetes API (cdk8s-plus-27's imports), taken
// from a generated subset (k8s-l1.ts, `npm run gen:k8s`): the package's index also loads every
// L2 class (~13 MiB of RSS), and its k8s imports every kind of the API (~8 MiB more); the
// builders use a dozen classes. Types come from the library's own declarations.
export * as k8s from './k8s-l1.ts';

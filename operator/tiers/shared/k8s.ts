// The typed L1 constructs generated from the Kubernetes API (cdk8s-plus-27's imports), taken
// from their own module: the package's index also loads every L2 class, which the builders do
// not use and which costs the operator ~13 MiB of RSS.
export * as k8s from 'cdk8s-plus-27/lib/imports/k8s.js';

// The typed L1 constructs generated from the Kubernetes API (cdk8s-plus-27's imports), not
// the package's index, which also loads every L2 class (~13 MiB of RSS). Its k8s module holds
// every kind of the API where the builders use a dozen classes: the operator's bundle gets a
// subset of it instead, cut at build time (package.json imports "#k8s", k8s-subset.ts).
export * as k8s from '#k8s';

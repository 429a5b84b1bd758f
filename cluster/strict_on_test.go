//go:build clusterstrict

package cluster

// strict makes the guarantees the cluster does not keep yet under faults
// errors (go test -tags clusterstrict ./cluster).
const strict = true

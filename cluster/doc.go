// Package cluster holds the cluster test of persona: persona daemons (the
// real binary, as subprocesses) sharing one three-node NATS JetStream
// cluster run in the test process, while nodes and daemons are killed and
// restarted under load (faults_test.go), and the self-test of the harness
// they use (harness_test.go). The package has no code of its own.
package cluster

package cluster

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterName is the route cluster every node of the harness joins.
const clusterName = "persona-test"

// readyTimeout bounds every wait of the harness for a node or the cluster:
// a JetStream meta election takes seconds on a loaded two-core machine.
const readyTimeout = 30 * time.Second

// natsCluster is an in-process JetStream cluster whose nodes can be killed
// and restarted: each node keeps its ports and store directory for the whole
// test, so a restarted node rejoins as the same Raft peer with its state.
// It is driven from the test's goroutine only.
type natsCluster struct {
	nodes []*clusterNode
}

// clusterNode is one node's fixed identity and, while it runs, its server.
type clusterNode struct {
	name      string // ServerName, which also fixes its Raft peer ID
	dir       string // StoreDir, kept across restarts
	port      int    // client port
	routePort int
	routes    []*url.URL         // the other nodes' route URLs
	srv       *natsserver.Server // nil while killed
}

// startCluster starts n JetStream nodes routed to each other and returns once
// the cluster has a meta leader that sees all n of them, so that streams of
// up to n replicas can be placed at once.
func startCluster(t testing.TB, n int) *natsCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &natsCluster{}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			name:      fmt.Sprintf("n%d", i),
			dir:       t.TempDir(),
			port:      ports[2*i],
			routePort: ports[2*i+1],
		})
	}
	for i, nd := range c.nodes {
		for j, other := range c.nodes {
			if j != i {
				nd.routes = append(nd.routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", other.routePort)})
			}
		}
	}
	t.Cleanup(c.shutdown)
	for i := range c.nodes {
		c.start(t, i)
	}
	c.waitMetaLeader(t)
	return c
}

// freePorts picks n distinct free loopback ports. It holds every listener
// until all are picked, so no port is handed out twice; another process may
// still take one before a node binds it, which a test on loopback accepts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// options builds node i's server options afresh: NewServer rewrites the
// Options it is given, so a restart must not reuse the first start's.
func (c *natsCluster) options(i int) *natsserver.Options {
	nd := c.nodes[i]
	return &natsserver.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.port,
		Cluster: natsserver.ClusterOpts{
			Name: clusterName,
			Host: "127.0.0.1",
			Port: nd.routePort,
		},
		Routes:    nd.routes,
		JetStream: true,
		StoreDir:  nd.dir,
		NoLog:     true,
		NoSigs:    true,
	}
}

// start starts node i and waits until it accepts clients.
func (c *natsCluster) start(t testing.TB, i int) {
	t.Helper()
	srv, err := natsserver.NewServer(c.options(i))
	if err != nil {
		t.Fatalf("node %s: %v", c.nodes[i].name, err)
	}
	srv.Start()
	c.nodes[i].srv = srv
	if !srv.ReadyForConnections(readyTimeout) {
		t.Fatalf("node %s: not ready after %v", c.nodes[i].name, readyTimeout)
	}
}

// waitMetaLeader waits until a node leads the JetStream meta group and
// counts every node as an online peer, and a client's account info request
// is answered: before that, creating a replicated stream fails.
func (c *natsCluster) waitMetaLeader(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, readyTimeout, "a JetStream meta leader seeing every node", func() bool {
		for _, nd := range c.nodes {
			if nd.srv != nil && nd.srv.JetStreamIsLeader() && len(nd.srv.JetStreamClusterPeers()) == len(c.nodes) {
				_, err := js.AccountInfo(t.Context())
				return err == nil
			}
		}
		return false
	})
}

// URLs is every node's client URL, comma-separated as nats.Connect takes
// them, so a client fails over to whichever node is up.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", nd.port))
	}
	return strings.Join(urls, ",")
}

// Name is node i's server name, as JetStream reports a leader or replica.
func (c *natsCluster) Name(i int) string { return c.nodes[i].name }

// Kill shuts node i down and waits until it is gone; its store stays for
// Restart.
func (c *natsCluster) Kill(i int) {
	nd := c.nodes[i]
	if nd.srv == nil {
		return
	}
	nd.srv.Shutdown()
	nd.srv.WaitForShutdown()
	nd.srv = nil
}

// Restart starts killed node i again on its ports and store directory, and
// waits until it accepts clients. It does not wait for the node to catch up
// with its streams.
func (c *natsCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.nodes[i].srv != nil {
		t.Fatalf("node %s: restarted while running", c.nodes[i].name)
	}
	c.start(t, i)
}

// StreamLeader is the index of the running node leading stream now, by each
// node's own Raft view. It fails the test unless exactly one node claims the
// stream: right after a kill there is none, so use WaitStreamLeader then.
func (c *natsCluster) StreamLeader(t testing.TB, stream string) int {
	t.Helper()
	leader, claims := c.streamLeader(stream)
	if claims != 1 {
		t.Fatalf("stream %s: %d running nodes claim to lead it", stream, claims)
	}
	return leader
}

// KVLeader is StreamLeader for a key-value bucket, which JetStream keeps in
// the stream KV_<bucket>.
func (c *natsCluster) KVLeader(t testing.TB, bucket string) int {
	t.Helper()
	return c.StreamLeader(t, "KV_"+bucket)
}

// WaitStreamLeader waits until exactly one running node leads stream, as after
// a kill of its leader the others elect one, and returns its index.
func (c *natsCluster) WaitStreamLeader(t testing.TB, stream string, timeout time.Duration) int {
	t.Helper()
	var leader int
	poll(t, timeout, "a leader of stream "+stream, func() bool {
		var claims int
		leader, claims = c.streamLeader(stream)
		return claims == 1
	})
	return leader
}

// streamLeader is the last running node claiming to lead stream, in the
// global account, and how many claim it: during an election it may be none.
func (c *natsCluster) streamLeader(stream string) (leader, claims int) {
	leader = -1
	for i, nd := range c.nodes {
		if nd.srv != nil && nd.srv.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, stream) {
			leader, claims = i, claims+1
		}
	}
	return leader, claims
}

// shutdown stops every running node; it is the harness's cleanup.
func (c *natsCluster) shutdown() {
	for i := range c.nodes {
		c.Kill(i)
	}
}

// poll checks cond every few milliseconds until it holds, and fails the test
// naming what it waited for if it does not hold within timeout.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("no %s after %v", what, timeout)
		}
	}
}

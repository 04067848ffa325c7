// Package nodetest starts real statenode clusters inside a test: every
// node has its own data directory, a Raft transport on a free loopback
// port, and its client HTTP API. Raft traffic between nodes runs through a
// userspace TCP proxy per directed link, so a test can cut links
// (Partition, Isolate, Heal) without touching the product code: each node
// dials its peers through raft's ServerAddressProvider.
//
//	c := nodetest.MakeCluster(t, 3)
//	l := c.Leader(t)
//	_, err := l.Put(ctx, []byte("k"), []byte("v"))
//	c.Partition(t, []int{0}, []int{1, 2})
//	c.Heal(t)
//	c.EnsureSame(t)
package nodetest

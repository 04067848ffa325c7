// Package proxy is the harness's network: one userspace TCP proxy per
// directed member-to-member link, through which faults are injected.
//
// Node i is configured to reach node j (its Raft port and its client API,
// used for forwarding) at the address of Link(i→j) instead of j's own, so
// that the harness decides which bytes get through:
//
//	nw := proxy.New(3, seed)
//	l, _ := nw.AddLink(0, 1, "raft", "127.0.0.1:7100") // node 0 dials l.Addr()
//	nw.Set(0, 1, proxy.Faults{Blocked: true})           // 0 can no longer send to 1
//	nw.HealAll()
//
// A partition holds bytes and closes held connections rather than corrupt
// them: it is what a blackholed TCP peer looks like. Delay keeps the order
// of bytes; loss is modeled as TCP sees it, a retransmission delay.
package proxy

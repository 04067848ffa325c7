// Package harness runs statenode under faults: it starts the real binary as
// separate processes (Cluster), routes every member-to-member link through
// the proxies of package proxy, drives a Workload with clients bound to
// every member, injects Faults from a seeded schedule (the nemesis), heals,
// checks liveness and convergence, and checks the recorded history.
//
//	res := harness.Run(ctx, harness.Quick()[0], harness.Options{
//		Binary: "bin/statenode", Out: "jepsen/out", Seed: 42, Time: 40 * time.Second,
//		Nodes: 3, Rate: 150, ClientsPerNode: 2, OpTimeout: 2 * time.Second, MinOKBeforeFaults: 20,
//	})
//	fmt.Println(res.Verdict()) // PASS register-partition-leader seed=42 ops=3947 ...
//
// Every run leaves a folder with the histories, the nemesis log, the node
// logs, result.json and verdict.txt; Recheck checks such a folder again.
// See docs/JEPSEN.md.
package harness

// Command statenode runs a statenode cluster member and talks to a cluster.
//
// It only parses configuration and wires things up: the member itself is
// package node, the client commands use package client.
//
// # Running a cluster
//
//	statenode dev                                    # throw-away single node on 127.0.0.1:7001
//	statenode agent --id n1 --data-dir /var/lib/statenode \
//	    --raft-addr 10.0.0.1:7000 --http-addr 10.0.0.1:7001 --bootstrap
//	statenode agent --id n2 --data-dir /var/lib/statenode \
//	    --raft-addr 10.0.0.2:7000 --http-addr 10.0.0.2:7001 --join 10.0.0.1:7001
//
// agent builds node.DefaultConfig, applies the flags, starts the node and
// serves until SIGINT or SIGTERM, then shuts down within --shutdown-timeout
// (a second signal exits at once). --bootstrap forms a new cluster, --join
// asks existing members for admission, --initial-cluster id=host:port,...
// starts a fixed set of members together; a data directory that already
// holds state ignores all three. Logs go to stderr (--log-level,
// --log-format text|json); Prometheus metrics, including Go and process
// collectors, are served on the client API at /metrics.
//
// dev runs one bootstrapped member with short timeouts and a temporary data
// directory (kept if --data-dir is given), prints
//
//	statenode dev node ready at http://127.0.0.1:7001 (data in /tmp/statenode-dev-...)
//
// once it serves linearizable requests, and stops on Ctrl-C.
//
// # Client commands
//
// All talk to the endpoints in --addr (default 127.0.0.1:7001, the dev node).
// Text output is meant for scripts and stays stable; -o json prints the API's
// JSON types (keys and values as strings, or key_base64/value_base64 when not
// valid UTF-8).
//
//	statenode kv put KEY [VALUE]       # VALUE omitted or "-": read stdin; prints "OK revision=N"
//	statenode kv get KEY               # prints the value and a newline
//	statenode kv get KEY --stale       # read the contacted member's local state
//	statenode kv get KEY --rev N       # read as of revision N
//	statenode kv get PREFIX --prefix   # keys starting with PREFIX, one per line
//	statenode kv ls [PREFIX]           # same, without reading values
//	statenode kv del KEY [--prefix]    # prints "deleted=N revision=R"
//	statenode kv cas KEY --rev N VALUE # put only if KEY's mod revision is N (0: absent)
//	statenode kv watch [PREFIX] [--rev N]   # "PUT key value" / "DELETE key" lines until Ctrl-C
//	statenode members [list]           # ID RAFT_ADDR HTTP_ADDR VOTER LEADER
//	statenode members add ID --raft-addr HOST:PORT --http-addr HOST:PORT   # "OK added id=..."
//	statenode members remove ID        # "OK removed id=..."; any member may be asked
//	statenode status                   # one row per endpoint in --addr
//	statenode leader                   # id=... http=... raft=...
//	statenode leader transfer [--to ID]
//	statenode snapshot save FILE       # "OK saved FILE index=I revision=R size=N"
//	statenode snapshot inspect FILE    # version=V index=I revision=R ... keys=K ... sessions=S locks=L ... size=N
//	statenode snapshot restore --yes FILE   # replace the WHOLE cluster's state; "OK restored FILE revision=R keys=K"
//	statenode version
//
// Exit status is 0 on success and 1 on any error, reported as one line on
// stderr: "statenode: key not found: foo", "statenode: cas failed: ...".
//
// # Backup and restore
//
// snapshot save streams a consistent copy of the cluster's state from any
// member (GET /v1/snapshot: every write acknowledged before it is in it)
// into FILE.part, fsyncs it, reads it back to check its CRC-32C trailer
// and renames it to FILE (mode 0600), so FILE exists only when complete;
// --timeout bounds reaching a member, not the transfer. snapshot inspect
// decodes a file completely, as a restore would, without a cluster (-o
// json for JSON). snapshot restore sends a file to the leader (POST
// /v1/snapshot), which checks all of it before anything changes, then
// replaces the state of the whole cluster: keys, sessions (with a fresh
// TTL), locks and elections become the file's, the member registry stays
// the running cluster's, the revision moves forward, and open watches end.
// It refuses without --yes, which is never read from STATENODE_YES or a
// --config file. docs/OPERATIONS.md, "Backup and restore", has the rest.
//
// # Coordination commands
//
// Sessions, fenced locks, elections, semaphores, barriers and latches of
// package coordination:
//
//	statenode lock NAME -- CMD [ARG...]   # run CMD while holding lock NAME
//	statenode lock --try NAME -- CMD      # exit 2 at once if NAME is held
//	statenode lock --wait 30s NAME -- CMD # exit 2 if not granted within 30s
//	statenode elect NAME VALUE            # campaign; prints "elected term=T"; leads until Ctrl-C, then resigns
//	statenode elect observe NAME          # "leader=ID term=T value=V" / "leader=none term=T" per change
//	statenode elect leader NAME           # the current leader
//	statenode sem NAME --permits N [--count K] -- CMD   # run CMD while holding K of N permits
//	statenode sem info NAME               # permits=N used=U holders=ID:K,... waiters=ID:K,...
//	statenode barrier await NAME --parties N            # prints "generation=G arrival=A" when N arrived
//	statenode barrier enter NAME --parties N -- CMD     # double barrier: run CMD once N entered, then leave
//	statenode barrier enter NAME --parties N --session ID   # enter for a session kept elsewhere
//	statenode barrier leave NAME --session ID           # leave for it; waits until every party left
//	statenode barrier reset NAME          # repair a broken barrier
//	statenode barrier info NAME           # parties=N double=B arrived=IDs left=IDs leaving=B broken=ID
//	statenode latch create NAME --count C # prints "initial=C count=C"
//	statenode latch countdown NAME [--session ID --request-id N]   # prints "count=N"
//	statenode latch await NAME [--wait D] # returns when the count is zero
//	statenode latch get NAME              # initial=I count=C
//	statenode latch rm NAME
//	statenode kv put KEY VALUE --session ID   # an ephemeral key, deleted when the session ends
//	statenode session ls                  # ID NAME TTL REMAINING LOCKS WAITING
//	statenode session rm ID               # destroy a session, releasing what it holds
//
// lock creates a session (--ttl, default 10s), acquires the lock and runs
// the command with STATENODE_FENCE (the fencing token), STATENODE_LOCK and
// STATENODE_SESSION in its environment, in its own process group. SIGINT
// and SIGTERM are forwarded to the group; when the command exits, the lock
// is released, the session destroyed, and lock exits with the command's
// status (128+N if signal N ended it). If the session is lost while the
// command runs, the group gets SIGTERM, then SIGKILL after --kill-grace
// (default 5s), and lock exits 3. Exit status 2: not acquired (held with
// --try, --wait ran out, interrupted while waiting); 127: the command could
// not be started. elect exits 0 after resigning on a signal, 2 if not
// elected within --wait, 3 if its session was lost.
//
// sem runs its command as lock does (the same code, hold.go), holding
// --count of the semaphore's --permits permits, with STATENODE_PERMITS
// (the count held), STATENODE_SEM and STATENODE_SESSION in its
// environment; its exit statuses are lock's. Every user of a semaphore
// must give the same --permits (exit 1 otherwise). barrier await and
// barrier enter exit 2 when --wait runs out (the wait is withdrawn), 3 if
// their session was lost, and 4 if the barrier broke: a registered
// party's session ended (or someone reset the barrier) while they waited;
// the message names that session, and the barrier stays broken until
// barrier reset. barrier enter runs its command as lock does, with
// STATENODE_BARRIER and STATENODE_SESSION, then leaves and waits for the
// other parties to leave; it exits with the command's status. latch await
// exits 2 when --wait runs out. A latch is not tied to a session: it lives
// until latch rm.
//
// Commands that act for a session kept alive by another process (barrier
// enter|leave --session, latch countdown --session, kv put --session)
// take its ID explicitly: --session (and --permits) are not read from
// STATENODE_SESSION (STATENODE_PERMITS), the variables lock and sem set
// for their command. Their request IDs are drawn from the upper half of
// the ID space, which package coordination never uses, so they cannot
// collide with the owner's: latch countdown --request-id N makes a rerun
// with the same session and N count once.
//
// # Benchmark
//
// bench is a load generator in the style of etcd's "benchmark put": --total
// requests over --clients workers sharing --conns client instances, keys of
// --key-size bytes drawn from --key-space (or in sequence with --seq-keys),
// values of --val-size bytes, an operation mix (--mix put=50,get=40,cas=5,txn=5),
// --consistency l|s for reads and an optional --rate limit. Mixes that read
// preload the key space first. The report has etcd's layout (Summary,
// Response time histogram, Latency distribution; so the two compare line by
// line), then per-operation counts and the error distribution:
//
//	statenode --addr 10.0.0.1:7001,10.0.0.2:7001 bench --clients 64 --conns 8 --total 100000
//
// bench lock, bench election and bench semaphore measure the coordination
// primitives with one session per worker (as etcd's concurrency.Mutex
// benchmarks do) and print the same report. bench lock times lock+unlock
// cycles of --workers workers on their own locks (--distinct, the
// default) or on one lock (--contended: every grant is a handoff);
// Requests/sec is cycles per second. bench election has --workers
// candidates (default 3) take turns leading one election and times each
// handoff, from the start of the leader's resign until the next
// candidate's campaign returns. bench semaphore times acquire+release
// cycles of one permit by --workers workers (default 10) sharing one
// semaphore of --permits permits (default 3):
//
//	statenode bench lock --workers 100 --distinct --total 100000
//	statenode bench lock --workers 10 --contended --total 10000
//	statenode bench election --total 1000
//	statenode bench semaphore --workers 10 --permits 3 --total 10000
//
// # Configuration precedence
//
// Every flag can be given three ways besides its default. From highest to
// lowest precedence:
//
//  1. the command line: --http-addr 10.0.0.1:7001 (global flags such as
//     --addr, -o and --timeout may come before or after the command name);
//  2. the environment: STATENODE_ followed by the flag name in upper case
//     with dashes as underscores: STATENODE_HTTP_ADDR=10.0.0.1:7001,
//     STATENODE_ADDR, STATENODE_OUTPUT, STATENODE_CONFIG;
//  3. the JSON file named by --config (or STATENODE_CONFIG): one object
//     whose keys are flag names ("http-addr", "http_addr" or "httpAddr") and
//     whose values are strings, numbers, booleans or, for list flags, arrays:
//     {"id": "n1", "data-dir": "/var/lib/statenode", "join": ["10.0.0.1:7001"]}.
//     A key that names no flag is an error;
//  4. the default shown by --help (for agent: node.DefaultConfig).
//
// The version is set at build time with
// go build -ldflags "-X main.version=v1.0.0" and printed by --version and
// statenode version.
package main

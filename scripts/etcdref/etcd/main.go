// Command etcd is the etcd server (etcdmain) at the version pinned in
// go.mod: the reference that scripts/bench-etcd.sh measures.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }

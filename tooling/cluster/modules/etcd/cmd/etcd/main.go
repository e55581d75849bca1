// Command etcd is the etcd server of go.etcd.io/etcd/server/v3 at the version this module pins,
// as a main package of our own: the server module has no main package that `go build` can name.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

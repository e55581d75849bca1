// Command pause is the test cluster's Pod sandbox process: it holds the Pod's namespaces until it
// is told to stop (SIGINT or SIGTERM), and as PID 1 of a shared PID namespace it reaps orphans.
// It is built statically and pushed as the sandbox image by tooling/cluster/cluster.sh; the
// machine reaches no registry that serves the upstream pause image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

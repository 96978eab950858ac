// Command pause is the kube-harden node's sandbox ("pause") process: it holds
// a pod's namespaces open and does nothing else. It sleeps until SIGTERM or
// SIGINT (exit 0) and, as PID 1 of a pod sharing its process namespace, reaps
// every orphaned child that is reparented to it so none stays a zombie.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

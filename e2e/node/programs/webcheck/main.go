// Command webcheck is the node e2e tests' HTTP server: a small "legacy" web
// app that, like many real ones, writes a temporary file for each request.
// GET / answers with what the process observes about its own sandbox, one
// key=value per line, so a check from the host proves what the kubelet ran:
//
//	uid=<uid> gid=<gid>
//	root_writable=<true|false>   (can it create a file in /)
//	tmp_writable=<true|false>    (can it create a file in $TMPDIR or /tmp)
//
// It listens on $PORT (default 8080) and exits 0 on SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func canCreate(dir string) bool {
	f, err := os.CreateTemp(dir, "webcheck-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_, werr := f.WriteString("ok")
	f.Close()
	os.Remove(name)
	return werr == nil
}

func handler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "uid=%d\ngid=%d\nroot_writable=%t\ntmp_writable=%t\n",
		os.Getuid(), os.Getgid(), canCreate("/"), canCreate(os.TempDir()))
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	// Like the legacy apps it stands for: refuse to start without a writable temp dir.
	if !canCreate(os.TempDir()) {
		fmt.Fprintf(os.Stderr, "webcheck: cannot write to %s: read-only file system?\n", os.TempDir())
		os.Exit(1)
	}
	srv := &http.Server{Addr: ":" + port, Handler: http.HandlerFunc(handler), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	fmt.Fprintf(os.Stderr, "webcheck: listening on :%s as uid %d\n", port, os.Getuid())
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "webcheck:", err)
		os.Exit(1)
	}
}

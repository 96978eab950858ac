package main

// The pause binary as the kubelet runs it: PID 1 of its own PID namespace. Needs root
// (unshare, nsenter); run by `make node-e2e`.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startInPIDNamespace runs pause as PID 1 of a new PID namespace and returns the unshare
// process and pause's PID as the host sees it.
func startInPIDNamespace(t *testing.T, bin string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("unshare", "--fork", "--pid", bin)
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare (needs root): %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		children, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
		if fields := strings.Fields(string(children)); len(fields) == 1 {
			pid, _ := strconv.Atoi(fields[0])
			// Killing pause (PID 1 of the namespace) ends everything in it, then unshare.
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL); _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return cmd, pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Fatal("pause did not start under unshare")
	return nil, 0
}

// childrenOf lists the PIDs (host view) whose parent is pid, with their state letter.
func childrenOf(pid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) > 1 && rest[1] == strconv.Itoa(pid) {
			out[p] = rest[0]
		}
	}
	return out
}

func TestReapsOrphansAndExitsOnSignals(t *testing.T) {
	bin := build(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd, pid := startInPIDNamespace(t, bin)
		// An orphan in pause's PID namespace: `sh` exits at once, its `sleep` is reparented
		// to PID 1 (pause) and must be reaped when it exits. (Its output goes to /dev/null, or
		// CombinedOutput would wait for it.)
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-p", "--",
			"sh", "-c", "(sleep 2 </dev/null >/dev/null 2>&1 &); exit 0").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter: %v\n%s", err, out)
		}
		if len(childrenOf(pid)) != 1 {
			t.Fatalf("the orphan was not reparented to pause: children %v", childrenOf(pid))
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(childrenOf(pid)) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the orphan was not reaped: children %v (Z = zombie)", childrenOf(pid))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		// unshare exits with pause's status.
		if err := cmd.Wait(); err != nil {
			t.Fatalf("after %v: %v (want exit 0)", sig, err)
		}
	}
}

//go:build unix

package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSupervisedStopsPolitely(t *testing.T) {
	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "got-term"), filepath.Join(dir, "ready")
	// The shell runs sleep in the background and waits, so the trap runs
	// as soon as TERM arrives.
	s := NewSupervised(script(t, `trap 'touch `+marker+`; exit 0' TERM
touch `+ready+`
sleep 600 & wait`))
	ctx := t.Context()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(ready); return err == nil })
	pid := s.Pid()
	if err := s.Start(ctx); err != nil || s.Pid() != pid {
		t.Fatalf("second Start: %v, pid %d -> %d; want a no-op", err, pid, s.Pid())
	}
	if up, _ := s.Running(ctx); !up {
		t.Fatal("not running after Start")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if up, _ := s.Running(ctx); up {
		t.Fatal("running after Stop")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("program did not get SIGTERM: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop of a stopped program: %v", err)
	}
}

func TestSupervisedKillsAfterTimeout(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	s := NewSupervised(script(t, `trap '' TERM
touch `+ready+`
while :; do sleep 1; done`))
	s.StopTimeout = 100 * time.Millisecond
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(ready); return err == nil })
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if !errors.As(s.ExitErr(), &ee) {
		t.Fatalf("ExitErr = %v, want a kill", s.ExitErr())
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("exit status %v, want killed by SIGKILL", ws)
	}
	// The whole group went: no sleep child survives holding the binary.
	waitFor(t, func() bool { return !groupAlive(s.Pid()) })
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether a process group has a live (non-zombie)
// member. Zombies count as gone: a container's init may never reap them.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true // no procfs: trust kill(2)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

func TestSupervisedNoticesExit(t *testing.T) {
	s := NewSupervised(script(t, "exit 7"))
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		up, _ := s.Running(ctx)
		if !up {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("exit not noticed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.ExitErr(); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("ExitErr = %v, want exit status 7", err)
	}
}

func TestSupervisedStartMissingBinary(t *testing.T) {
	s := NewSupervised(filepath.Join(t.TempDir(), "missing"))
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
	if up, _ := s.Running(t.Context()); up {
		t.Fatal("running after a failed Start")
	}
}

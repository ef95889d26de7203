// Command baseline is the bare Go daemon bench/agent compares poolagent
// with: it waits for SIGTERM and wakes up once per interval.
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-sig:
			return
		case <-t.C:
		}
	}
}

//go:build !linux

// Command agent benchmarks the poolagent daemon; it reads /proc and runs
// on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/agent: Linux only (it reads /proc)")
	os.Exit(1)
}

//go:build !unix

// Command updater is the updater benchmark; it needs a Unix host (it reads
// child processes' rusage).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/updater runs on Unix hosts only")
	os.Exit(1)
}

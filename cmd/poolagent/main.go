// Command poolagent is the on-host daemon that keeps a host's managed agents
// up to date.
package main

import (
	"fmt"
	"os"

	"github.com/poolagent/poolagent/internal/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("poolagent", version.String())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: poolagent version")
	os.Exit(2)
}

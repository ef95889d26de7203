// Command build writes poolagent's and poolserver's release packages into
// dist/ (`make packages` runs it): .deb and .rpm for each Linux architecture
// and the Windows zip and MSI of poolagent (the MSI needs msitools: wixl,
// msibuild, msiinfo). See package packaging.
//
//	go run ./packaging/build --version v1.2.3 --nfpm PATH [--out dist] [--arch amd64,arm64] [--windows=true] [--msi=true]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/poolagent/poolagent/packaging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	version := fs.String("version", "dev", "release version stamped into the binaries")
	out := fs.String("out", "dist", "output directory")
	arches := fs.String("arch", strings.Join(packaging.DefaultArches, ","), "comma-separated Linux architectures")
	windows := fs.Bool("windows", true, "also build the Windows amd64 zip of poolagent")
	msi := fs.Bool("msi", true, "with --windows, also build the Windows amd64 MSI of poolagent (needs msitools)")
	nfpm := fs.String("nfpm", "nfpm", "the nfpm command")
	goCmd := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	files, err := packaging.Build(ctx, packaging.Options{
		Root:    root,
		Version: *version,
		OutDir:  *out,
		Arches:  strings.Split(*arches, ","),
		Windows: *windows,
		MSI:     *msi,
		NFPM:    *nfpm,
		Go:      *goCmd,
		Log:     os.Stdout,
	})
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println("wrote", f)
	}
	return nil
}

// Package process controls the programs poolagent manages: a supervised
// child process (Supervised) or a service of the host's service manager
// (SystemService: systemd on Linux, the Service Control Manager on
// Windows, launchd on macOS). Both satisfy updater.Service.
package process

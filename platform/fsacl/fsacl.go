// Package fsacl keeps poolagent's secrets readable by the administrators of
// the host only: the state dir (credentials, the local API token, state,
// the updater's journal and downloads) and the secret files themselves.
//
// On Windows it sets a protected DACL: full control for SYSTEM and the
// Administrators group, nothing inherited from the parent (C:\ProgramData
// lets every local user read), and, on a directory, ACEs that its files and
// subdirectories inherit. When the process runs without elevation (a
// developer or a test running poolagent on its own state dir) the process's
// user gets an ACE too, so that poolagent can still read what it wrote; the
// service (LocalSystem) and an elevated `poolagent enroll` get exactly SYSTEM
// and Administrators.
//
// On Unix the same calls keep the modes poolagent has always used: 0700 for
// the directory, 0600 for a file.
//
// The SDDL strings are built by portable code (DirSDDL, FileSDDL) so that
// they are tested on every OS; only the apply step is Windows-specific.
package fsacl

import "strings"

// Well-known SID strings of the trustees that keep full control.
const (
	// System is the LocalSystem account (SY), which the service runs as.
	System = "SY"
	// Administrators is the built-in Administrators group (BA).
	Administrators = "BA"
)

// Trustees are the SIDs granted full control by default.
var Trustees = []string{System, Administrators}

// DirSDDL returns the DACL in SDDL for a private directory: protected
// ("P", no inheritance from the parent), auto-inherited ("AI"), and one
// full-control ACE per trustee that files and subdirectories inherit
// ("OICI"). extra SIDs (string form, e.g. "S-1-5-21-...") are added after
// SYSTEM and Administrators.
func DirSDDL(extra ...string) string { return sddl("OICI", extra) }

// FileSDDL returns the DACL in SDDL for a private file: protected, with one
// full-control ACE per trustee and no inheritance flags.
func FileSDDL(extra ...string) string { return sddl("", extra) }

func sddl(inherit string, extra []string) string {
	var b strings.Builder
	b.WriteString("D:PAI")
	for _, sid := range append(append([]string(nil), Trustees...), extra...) {
		b.WriteString("(A;" + inherit + ";FA;;;" + sid + ")")
	}
	return b.String()
}

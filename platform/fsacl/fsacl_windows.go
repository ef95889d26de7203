package fsacl

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// MkdirPrivate creates dir and its missing parents, then sets dir's
// protected DACL (DirSDDL) whether it was just created or already existed,
// so a state dir an installer or an earlier version created with
// C:\ProgramData's inherited ACL is locked down too. Windows propagates the
// inheritable ACEs to the files already inside.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create private directory: %w", err)
	}
	return apply(dir, DirSDDL(extraTrustees()...))
}

// RestrictFile sets path's protected DACL (FileSDDL): SYSTEM and
// Administrators only, nothing inherited from the directory.
func RestrictFile(path string) error {
	return apply(path, FileSDDL(extraTrustees()...))
}

// apply sets the DACL of sddl on path, marked protected.
func apply(path, sddl string) error {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: parse %q: %w", path, sddl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", path, err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators (set its ACL): %w", path, err)
	}
	return nil
}

// extraTrustees returns the process's own user SID when the process is
// not elevated and is not LocalSystem, so that it keeps access to what it
// writes; nil otherwise.
func extraTrustees() []string {
	tok := windows.GetCurrentProcessToken()
	if tok.IsElevated() {
		return nil
	}
	u, err := tok.GetTokenUser()
	if err != nil {
		return nil
	}
	if u.User.Sid.IsWellKnown(windows.WinLocalSystemSid) {
		return nil
	}
	return []string{u.User.Sid.String()}
}

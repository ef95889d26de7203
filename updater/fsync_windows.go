package updater

// syncDir is a no-op on Windows: directories cannot be opened for
// FlushFileBuffers without backup privileges, and NTFS journals metadata
// (MoveFileEx renames) itself.
func syncDir(string) error { return nil }

package atomicfile

// SyncDir does nothing on Windows: a directory cannot be opened for
// FlushFileBuffers without backup privileges, and NTFS journals metadata
// (MoveFileEx renames) itself.
func SyncDir(string) error { return nil }

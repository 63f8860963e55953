package badgerstore

// SetCrashPoint makes the next staged transactions stop at point, leaving
// the disk as a process killed there would.
func SetCrashPoint(s *Store, point string) { s.crashAt = point }

package equity

import "strings"

func joinKey(values []string) string { return strings.Join(values, "\x1f") }

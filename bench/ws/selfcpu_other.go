//go:build !unix

package main

import "time"

// selfCPU is not measured here: the benchmark runs on Linux (it reads
// /proc); this keeps the module building everywhere.
func selfCPU() time.Duration { return 0 }

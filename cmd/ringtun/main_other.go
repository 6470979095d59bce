//go:build !linux

// Command ringtun shows and manages ringtun adapters; see main_linux.go.
// It runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ringtun: this command runs on Linux only")
	os.Exit(1)
}

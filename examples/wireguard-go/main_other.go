//go:build !linux

// Command wireguard-go is wireguard-go on a ringtun adapter; see
// main.go. It runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wireguard-go: this example runs on Linux only")
	os.Exit(1)
}

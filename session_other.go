//go:build !linux && !windows

package ringtun

import "github.com/ringtun/ringtun/internal/control"

// offloads is what a session's driver may use; no platform but Linux has
// any yet.
type offloads struct{}

// assembleSession builds a session on an attached queue. manager refuses
// before a queue can be attached on these platforms.
func assembleSession(*control.Attached, uint32, SessionOptions) (*Session, error) {
	return nil, ErrNotSupported
}

// Neither offload-aware sessions nor in-flight limits (SessionOptions).
const offloadSessions, inFlightLimits = false, false

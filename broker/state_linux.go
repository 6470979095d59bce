package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringtun/ringtun/internal/guid"
)

// stateFile is where the server keeps its owner records across restarts.
type stateFile struct{ path string }

func (f *stateFile) load() ([]owner, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []owner
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("ringtund: state file %s: %w", f.path, err)
	}
	return list, nil
}

// save writes the records atomically (a new file renamed over the old).
func (f *stateFile) save(list []owner) error {
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

// saveLocked records the owners; s.mu is held.
func (s *Server) saveLocked() {
	if s.state == nil {
		return
	}
	list := make([]owner, 0, len(s.owners))
	for _, o := range s.owners {
		list = append(list, o)
	}
	if err := s.state.save(list); err != nil {
		s.log.Error("writing the state file", "path", s.state.path, "err", err)
	}
}

// recover reads the records a previous daemon left. It deletes the
// non-persistent adapters of clients that are gone, and keeps the owners
// of the others, so that their clients may still use them.
func (s *Server) recover() error {
	list, err := s.state.load()
	if err != nil {
		return err
	}
	live, err := s.local.List()
	if err != nil {
		return err
	}
	exists := map[guid.GUID]string{}
	for _, i := range live {
		exists[i.Meta.GUID] = i.Name
	}
	for _, o := range list {
		name, ok := exists[o.GUID]
		if !ok {
			continue
		}
		o.Name = name
		if o.Persistent || processStart(o.PID) == o.PIDStart && o.PIDStart != 0 {
			s.owners[o.GUID] = o
			continue
		}
		if ad, err := s.local.Open(name); err == nil && ad.Meta().GUID == o.GUID {
			if err := ad.Delete(); err != nil {
				s.log.Warn("a gone client's adapter is still in use; kept", "adapter", name, "uid", o.UID, "err", err)
				s.owners[o.GUID] = o
			} else {
				s.log.Info("deleted a gone client's adapter", "adapter", name, "uid", o.UID, "pid", o.PID)
			}
		} else if ad != nil {
			ad.Close()
		}
	}
	s.mu.Lock()
	s.saveLocked()
	s.mu.Unlock()
	return nil
}

// processStart returns the start time of process pid (in clock ticks
// since boot), or 0 if there is no such process: with the pid it tells a
// process from a later one that got its pid.
func processStart(pid uint32) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// Fields after the command: state is field 3; starttime is field 22.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

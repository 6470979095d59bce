package broker

import (
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// conn frames messages on a Unix stream socket and passes descriptors.
type conn struct {
	uc  *net.UnixConn
	wmu sync.Mutex // one message at a time
	oob []byte     // the reader's ancillary buffer
}

// bodyTimeout bounds how long the rest of a message may take once its
// first byte has come, so that a peer that stops half-way holds nothing
// but its own connection, and not for long.
const bodyTimeout = 10 * time.Second

func newConn(uc *net.UnixConn) *conn {
	return &conn{uc: uc, oob: make([]byte, unix.CmsgSpace(4*16))}
}

// write sends one message; fd, if not negative, goes with its first byte.
func (c *conn) write(op uint16, id uint32, body []byte, fd int) error {
	if len(body) > MaxBody {
		return fmt.Errorf("broker: message body of %d bytes, more than %d", len(body), MaxBody)
	}
	msg := make([]byte, headerLen+len(body))
	encodeHeader(msg, header{op: op, id: id, length: uint32(len(body))})
	copy(msg[headerLen:], body)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, _, err := c.uc.WriteMsgUnix(msg, oob, nil)
	if err == nil && n < len(msg) {
		_, err = c.uc.Write(msg[n:])
	}
	return err
}

// read receives one message and the descriptors that came with it. It must
// not be called from two goroutines at once.
func (c *conn) read() (header, []byte, []int, error) {
	var fds []int
	hb := make([]byte, headerLen)
	if err := c.readFull(hb, &fds, false); err != nil {
		return header{}, nil, closeAll(fds), err
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return h, nil, closeAll(fds), err
	}
	body := make([]byte, h.length)
	if err := c.readFull(body, &fds, true); err != nil {
		return h, nil, closeAll(fds), err
	}
	return h, body, fds, nil
}

// readFull fills b, collecting the descriptors that arrive with it.
func (c *conn) readFull(b []byte, fds *[]int, started bool) error {
	defer c.uc.SetReadDeadline(time.Time{})
	for n := 0; n < len(b); {
		if started || n > 0 {
			c.uc.SetReadDeadline(time.Now().Add(bodyTimeout))
		}
		k, oobn, _, _, err := c.uc.ReadMsgUnix(b[n:], c.oob)
		if oobn > 0 {
			*fds = append(*fds, parseRights(c.oob[:oobn])...)
		}
		n += k
		switch {
		case err != nil && (started || n > 0):
			return fmt.Errorf("%w: message cut short: %v", errProtocol, err)
		case err != nil:
			return err // io.EOF: the peer closed between messages
		case k == 0:
			return fmt.Errorf("%w: message cut short", errProtocol)
		}
	}
	return nil
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// closeAll closes fds and returns nil.
func closeAll(fds []int) []int {
	for _, fd := range fds {
		unix.Close(fd)
	}
	return nil
}

func (c *conn) close() error { return c.uc.Close() }

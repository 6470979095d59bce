package broker

import (
	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/guid"
)

// The bodies of requests and responses, each with its encoding. A request
// type decodes only its own fields; decodeRequest refuses anything else.

type createReq struct {
	name, tunnelType string
	guid             guid.GUID
	persistent       bool
	config           *control.Config
}

type nameReq struct{ name string }

type handleReq struct{ handle uint32 }

type configureReq struct {
	handle uint32
	config control.Config
}

type startReq struct {
	handle   uint32
	capacity uint32
}

type adapterResp struct {
	handle uint32
	info   control.Info
}

type startResp struct {
	name string
	mtu  uint32
}

func (e *enc) config(c *control.Config) {
	e.bool(c != nil)
	if c == nil {
		return
	}
	e.prefixes(c.Addresses)
	e.prefixes(c.Routes)
	e.u32(c.RouteMetric)
	e.u32(uint32(c.MTU))
}

func (d *dec) config() *control.Config {
	if !d.bool() {
		return nil
	}
	c := &control.Config{Addresses: d.prefixes(), Routes: d.prefixes(), RouteMetric: d.u32()}
	mtu := d.u32()
	if mtu > 65535 && d.err == nil {
		d.err = protoErr("MTU %d", mtu)
	}
	c.MTU = int(mtu)
	return c
}

func (e *enc) info(i control.Info) {
	e.str(i.Name)
	e.u32(uint32(i.Index))
	e.guid(i.Meta.GUID)
	e.bool(i.Meta.Persistent)
	e.str(i.Meta.TunnelType)
	e.bool(i.InUse)
}

func (d *dec) info() control.Info {
	var i control.Info
	i.Name = d.str()
	i.Index = int(d.u32())
	i.Meta.GUID = d.guid()
	i.Meta.Persistent = d.bool()
	i.Meta.TunnelType = d.str()
	i.InUse = d.bool()
	return i
}

// encodeRequest encodes a request's body.
func encodeRequest(req any) []byte {
	var e enc
	switch r := req.(type) {
	case nil:
	case *createReq:
		e.str(r.name)
		e.str(r.tunnelType)
		e.guid(r.guid)
		e.bool(r.persistent)
		e.config(r.config)
	case *nameReq:
		e.str(r.name)
	case *handleReq:
		e.u32(r.handle)
	case *configureReq:
		e.u32(r.handle)
		e.config(&r.config)
	case *startReq:
		e.u32(r.handle)
		e.u32(r.capacity)
	default:
		panic("broker: unknown request type")
	}
	return e.b
}

// decodeRequest decodes the body of a request of type op.
func decodeRequest(op Op, body []byte) (any, error) {
	d := dec{b: body}
	var req any
	switch op {
	case OpVersion, OpList, OpUninstall:
	case OpCreate:
		r := &createReq{name: d.str(), tunnelType: d.str(), guid: d.guid(), persistent: d.bool()}
		r.config = d.config()
		req = r
	case OpOpen:
		req = &nameReq{name: d.str()}
	case OpClose, OpDelete, OpEndSession:
		req = &handleReq{handle: d.u32()}
	case OpConfigure:
		r := &configureReq{handle: d.u32()}
		if c := d.config(); c != nil {
			r.config = *c
		} else if d.err == nil {
			d.err = protoErr("configure without a configuration")
		}
		req = r
	case OpStartSession:
		req = &startReq{handle: d.u32(), capacity: d.u32()}
	default:
		return nil, protoErr("unknown request %v", op)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return req, nil
}

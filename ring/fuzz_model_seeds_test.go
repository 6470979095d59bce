package ring

// FuzzModel's seed corpus, written as operations.

// fzModelSeed builds FuzzModel inputs.
type fzModelSeed struct{ b []byte }

func newModelSeed(start uint32) *fzModelSeed {
	s := start >> 2
	return &fzModelSeed{b: []byte{byte(s), byte(s >> 8)}}
}

func (s *fzModelSeed) op(op int, args ...byte) *fzModelSeed {
	for i, o := range fzModelOps {
		if int(o) == op {
			s.b = append(s.b, byte(i))
			s.b = append(s.b, args...)
			return s
		}
	}
	panic("unknown op")
}

func (s *fzModelSeed) alloc(size int) *fzModelSeed { return s.op(fzAllocate, fzSize(size)...) }

func (s *fzModelSeed) commit(k byte) *fzModelSeed { return s.op(fzCommit, k) }

func (s *fzModelSeed) recv() *fzModelSeed { return s.op(fzReceive) }

func (s *fzModelSeed) release(k byte) *fzModelSeed { return s.op(fzRelease, k) }

func (s *fzModelSeed) pump(n byte, size int) *fzModelSeed {
	return s.op(fzPump, append([]byte{n - 1}, fzSize(size)...)...)
}

func (s *fzModelSeed) misuse(kind, k, j byte) *fzModelSeed { return s.op(fzMisuse, kind, k, j) }

// fzModelSeeds are the FuzzModel inputs added in code: each is a situation
// the model must get right.
func fzModelSeeds() []fzSeed {
	return []fzSeed{
		{"one-record", newModelSeed(0).alloc(5).commit(0).recv().release(0).b},
		// Commit and release out of order; ErrEmpty while the first
		// record is pending.
		{"out-of-order", newModelSeed(0).alloc(1).alloc(2).alloc(3).commit(2).recv().commit(1).recv().
			commit(0).recv().recv().recv().release(1).release(1).release(0).b},
		// Two maximum records do not fit, the exact rest does, then not
		// even an empty one; after one release a maximum one fits again.
		{"full-ring", newModelSeed(0).alloc(PacketSizeMax).alloc(PacketSizeMax).alloc(0xFFF4).alloc(0).
			commit(0).commit(0).recv().release(0).alloc(PacketSizeMax).b},
		// A maximum record starting at capacity-4 runs through the whole
		// trailing area; the next one starts at 0x10000.
		{"wrap-max-record", newModelSeed(CapacityMin - 4).alloc(PacketSizeMax).alloc(100).commit(0).commit(0).
			recv().recv().release(1).release(0).b},
		// Many records across the end of the ring.
		{"wrap-pump", newModelSeed(CapacityMin-0x100).pump(200, 37).pump(10, 0).pump(50, 1500).b},
		// Batches, with a duplicate in each.
		{"batches", newModelSeed(0).op(fzAllocateBatch, 2, 10, 20, 30).op(fzCommitBatch, 3, 0, 4, 3, 0).
			op(fzReceiveBatch, 7).op(fzReleaseBatch, 3, 0, 4, 3, 0).b},
		// Double commit, double release, foreign slices.
		{"misuse", newModelSeed(0).alloc(8).alloc(8).commit(0).misuse(fzDoubleCommit, 0, 0).
			misuse(fzForeignCommit, 2, 0).recv().misuse(fzReleaseUnreceived, 0, 0).
			misuse(fzCommitReceived, 0, 0).release(0).misuse(fzForeignRelease, 3, 0).b},
		// Wait and the wake-up: Alertable set, then a commit signals.
		{"wait-alertable", newModelSeed(0).op(fzWait).op(fzAlertable, 0).alloc(3).op(fzWait).commit(0).op(fzWait).
			recv().release(0).op(fzAlertable, 0).alloc(1).commit(0).b},
		// KeepAlertable: every Tail move signals, in batches once.
		{"keep-alertable", newModelSeed(0).op(fzAlertable, 7).alloc(1).alloc(2).commit(1).commit(0).
			op(fzAllocateBatch, 1, 3, 4).op(fzCommitBatch, 1, 0, 0).op(fzReceiveBatch, 7).op(fzAlertable, 0).b},
		// Restarting each side from the shared words.
		{"restart", newModelSeed(0x1000).alloc(10).alloc(20).commit(0).op(fzRestartProducer).alloc(30).
			commit(0).op(fzRestartConsumer).recv().release(0).op(fzRestartConsumer).recv().release(0).b},
		{"invalid-sizes", newModelSeed(0).alloc(-1).alloc(PacketSizeMax+1).op(fzAllocateBatch, 1, 0xF8).b},
		// The producer terminates with a record allocated and one
		// committed that the consumer has not looked at: a late Commit is
		// allowed, the consumer sees ErrTerminated, also after a restart.
		{"terminate-producer", newModelSeed(0x2000).alloc(5).alloc(6).commit(0).op(fzTerminateProducer).
			commit(0).alloc(1).recv().op(fzWait).op(fzRestartConsumer).recv().op(fzRestartProducer).alloc(1).b},
		// The consumer terminates when the ring is full: the producer sees
		// ErrTerminated rather than ErrFull.
		{"terminate-consumer-full", newModelSeed(0).alloc(PacketSizeMax).alloc(0xFFF4).commit(0).commit(0).
			recv().op(fzTerminateConsumer).alloc(0).recv().release(0).op(fzRestartProducer).alloc(0).b},
	}
}

// ---------------------------------------------------------------------
// FuzzHostilePeer

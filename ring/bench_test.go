package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkGoroutines moves b.N records from a producer goroutine to a
// consumer goroutine through one ring with a ChanWaker.
func BenchmarkGoroutines(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			mem := make([]byte, RingSize(1<<22))
			r, err := New(mem, 1<<22)
			if err != nil {
				b.Fatal(err)
			}
			w := NewChanWaker()
			p, c := NewProducer(r, w), NewConsumer(r, w)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() { done <- produce(p, b.N, size) }()
			if err := consume(c, b.N); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkGoroutinesBatch is BenchmarkGoroutines with the batch calls,
// up to 64 records per call, the way a driver loop moves packets.
func BenchmarkGoroutinesBatch(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			mem := make([]byte, RingSize(1<<22))
			r, err := New(mem, 1<<22)
			if err != nil {
				b.Fatal(err)
			}
			w := NewChanWaker()
			p, c := NewProducer(r, w), NewConsumer(r, w)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() { done <- produceBatch(p, b.N, size) }()
			if err := consumeBatch(c, b.N); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

const batch = 64

func produceBatch(p *Producer, n, size int) error {
	var sizes [batch]int
	var pkts [batch][]byte
	for i := range sizes {
		sizes[i] = size
	}
	for i := 0; i < n; {
		want := min(batch, n-i)
		k, err := p.AllocateBatch(sizes[:want], pkts[:])
		if errors.Is(err, ErrFull) {
			runtime.Gosched()
			continue
		}
		if err != nil {
			return err
		}
		for j, pkt := range pkts[:k] {
			copy(pkt, payload)
			binary.LittleEndian.PutUint64(pkt, uint64(i+j))
		}
		if err := p.CommitBatch(pkts[:k]); err != nil {
			return err
		}
		i += k
	}
	return nil
}

func consumeBatch(c *Consumer, n int) error {
	ctx := context.Background()
	var pkts [batch][]byte
	for i := 0; i < n; {
		k, err := c.ReceiveBatch(pkts[:])
		if errors.Is(err, ErrEmpty) {
			if err := c.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, pkt := range pkts[:k] {
			if got := binary.LittleEndian.Uint64(pkt); got != uint64(i) {
				return fmt.Errorf("record %d carries sequence %d", i, got)
			}
			i++
		}
		if err := c.ReleaseBatch(pkts[:k]); err != nil {
			return err
		}
	}
	return nil
}

// payload is what producers copy into each record, as a driver copies a
// packet it read, so that the benchmarks' bytes/s include moving the bytes.
var payload = make([]byte, PacketSizeMax)

// produce commits n records of size bytes, each a copy of payload starting
// with its sequence number, waiting for room when the ring is full.
func produce(p *Producer, n, size int) error {
	for i := 0; i < n; i++ {
		pkt, err := p.Allocate(size)
		for errors.Is(err, ErrFull) {
			runtime.Gosched()
			pkt, err = p.Allocate(size)
		}
		if err != nil {
			return err
		}
		copy(pkt, payload)
		binary.LittleEndian.PutUint64(pkt, uint64(i))
		if err := p.Commit(pkt); err != nil {
			return err
		}
	}
	return nil
}

// consume receives n records and checks their sequence numbers.
func consume(c *Consumer, n int) error {
	ctx := context.Background()
	for i := 0; i < n; {
		pkt, err := c.Receive()
		if errors.Is(err, ErrEmpty) {
			if err := c.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if got := binary.LittleEndian.Uint64(pkt); got != uint64(i) {
			return fmt.Errorf("record %d carries sequence %d", i, got)
		}
		if err := c.Release(pkt); err != nil {
			return err
		}
		i++
	}
	return nil
}

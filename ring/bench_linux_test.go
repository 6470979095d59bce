//go:build linux

package ring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkTwoProcess moves b.N records from this process to a re-executed
// child through a memfd ring, the child sleeping on an eventfd when the
// ring is empty. The child is started and has mapped the ring before the
// timer starts; the timer stops when the child reports that it received
// and checked every record. The producer backs off with runtime.Gosched
// when the ring is full (the protocol has no wake-up for room).
func BenchmarkTwoProcess(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, batched := range []bool{false, true} {
			name := fmt.Sprintf("%dB/single", size)
			if batched {
				name = fmt.Sprintf("%dB/batch", size)
			}
			b.Run(name, func(b *testing.B) { benchTwoProcess(b, size, batched) })
		}
	}
}

const (
	benchCapacity = 1 << 22
	benchEnvSize  = "RINGTUN_RING_TEST_SIZE"
	benchEnvBatch = "RINGTUN_RING_TEST_BATCH"
)

func benchTwoProcess(b *testing.B, size int, batched bool) {
	sh, err := CreateShared("ringtun-bench", RingSize(benchCapacity))
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	ev, err := NewEventFD()
	if err != nil {
		b.Fatal(err)
	}
	defer ev.Close()
	r, err := New(sh.Bytes(), benchCapacity)
	if err != nil {
		b.Fatal(err)
	}
	p := NewProducer(r, ev)
	report, reportW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer report.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := tpCommand(ctx, tpRoleBench, []string{
		tpEnvRecords + "=" + strconv.Itoa(b.N),
		benchEnvSize + "=" + strconv.Itoa(size),
		benchEnvBatch + "=" + strconv.FormatBool(batched),
	}, []*os.File{
		tpDupFile(b, sh.Fd(), "memfd"),
		tpDupFile(b, ev.Fd(), "eventfd"),
		reportW,
	}, &out)
	if err := tpStart(cmd); err != nil {
		b.Fatal(err)
	}
	childDone := make(chan error, 1)
	go func() { childDone <- cmd.Wait() }()
	childErr := func() error {
		cancel() // kills the child if it still runs
		err := <-childDone
		childDone <- err
		return err
	}
	defer childErr()

	// Handshake: the child has mapped the ring and built its consumer.
	var line [64]byte
	report.SetReadDeadline(time.Now().Add(time.Minute))
	if err := benchReadLine(report, line[:], "ready"); err != nil {
		b.Fatalf("child start-up: %v (exit: %v)\n%s", err, childErr(), out.Bytes())
	}

	// The child's report that it got every record ends the timed part. If
	// the child dies instead, terminating the ring stops the producer.
	report.SetReadDeadline(time.Now().Add(10 * time.Minute))
	reported := make(chan error, 1)
	go func() {
		err := benchReadLine(report, line[:], "done")
		if err != nil {
			p.Terminate()
		}
		reported <- err
	}()

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if batched {
		err = produceBatch(p, b.N, size)
	} else {
		err = produce(p, b.N, size)
	}
	if err != nil {
		cancel()
	}
	rerr := <-reported
	b.StopTimer()

	if err != nil {
		b.Fatalf("producer: %v (report: %v, child exit: %v)\n%s", err, rerr, childErr(), out.Bytes())
	}
	if rerr != nil {
		b.Fatalf("child report: %v (exit: %v)\n%s", rerr, childErr(), out.Bytes())
	}
	select {
	case err := <-childDone:
		childDone <- err
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out.Bytes())
		}
	case <-time.After(time.Minute):
		b.Fatalf("child did not exit after its report\n%s", out.Bytes())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchReadLine reads one line from f into buf and checks that it is want.
func benchReadLine(f *os.File, buf []byte, want string) error {
	n := 0
	for n == 0 || buf[n-1] != '\n' {
		if n == len(buf) {
			return fmt.Errorf("line too long: %q", buf[:n])
		}
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("child closed its report pipe after %q, want %q", buf[:n], want)
			}
			return err
		}
	}
	if got := string(buf[:n-1]); got != want {
		return fmt.Errorf("child reported %q, want %q", got, want)
	}
	return nil
}

// benchTwoProcessChild is the child of BenchmarkTwoProcess: it maps the
// ring from descriptor 3, sleeps on the eventfd at 4, and reports on the
// pipe at 5 when it is ready and when it received and checked every
// record.
func benchTwoProcessChild() error {
	n, err := tpRecords()
	if err != nil {
		return err
	}
	size, err := strconv.Atoi(os.Getenv(benchEnvSize))
	if err != nil {
		return err
	}
	batched := os.Getenv(benchEnvBatch) == "true"
	report := os.NewFile(5, "report")
	defer report.Close()
	sh, err := MapShared(3, RingSize(benchCapacity))
	unix.Close(3)
	if err != nil {
		return err
	}
	defer sh.Close()
	ev, err := EventFDFrom(4)
	unix.Close(4)
	if err != nil {
		return err
	}
	defer ev.Close()
	r, err := New(sh.Bytes(), benchCapacity)
	if err != nil {
		return err
	}
	c := NewConsumer(r, ev)
	if _, err := report.WriteString("ready\n"); err != nil {
		return err
	}
	if batched {
		err = consumeBatch(c, int(n))
	} else {
		err = consume(c, int(n))
	}
	if err != nil {
		return fmt.Errorf("consuming %d records of %d bytes: %w", n, size, err)
	}
	_, err = report.WriteString("done\n")
	return err
}

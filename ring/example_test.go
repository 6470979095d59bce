package ring_test

import (
	"context"
	"fmt"

	"github.com/ringtun/ringtun/ring"
)

// A producer and a consumer share one ring. In a real program the memory
// comes from ring.CreateShared and the two sides may be two processes; any
// []byte of the right size works.
func Example() {
	const capacity = ring.CapacityMin
	r, err := ring.New(make([]byte, ring.RingSize(capacity)), capacity)
	if err != nil {
		panic(err)
	}
	wake := ring.NewChanWaker()
	producer := ring.NewProducer(r, wake)
	consumer := ring.NewConsumer(r, wake)

	for _, msg := range []string{"first", "second"} {
		pkt, err := producer.Allocate(len(msg))
		if err != nil {
			panic(err)
		}
		copy(pkt, msg)
		producer.Commit(pkt)
	}

	for {
		pkt, err := consumer.Receive()
		if err == ring.ErrEmpty {
			break
		}
		fmt.Printf("%s\n", pkt)
		consumer.Release(pkt)
	}
	// Output:
	// first
	// second
}

// Wait sleeps until the producer commits a record, using Wintun's
// Alertable protocol.
func ExampleConsumer_Wait() {
	const capacity = ring.CapacityMin
	r, _ := ring.New(make([]byte, ring.RingSize(capacity)), capacity)
	wake := ring.NewChanWaker()
	producer, consumer := ring.NewProducer(r, wake), ring.NewConsumer(r, wake)

	go func() {
		pkt, _ := producer.Allocate(5)
		copy(pkt, "hello")
		producer.Commit(pkt)
	}()

	if err := consumer.Wait(context.Background()); err != nil {
		panic(err)
	}
	pkt, _ := consumer.Receive()
	fmt.Printf("%s\n", pkt)
	consumer.Release(pkt)
	// Output: hello
}

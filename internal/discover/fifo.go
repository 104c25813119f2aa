package discover

// fifo is a queue of deadlines kept in the order they fall (every attempt of a stage waits as
// long, so a deadline pushed later never falls earlier), read from its head on. Entries whose
// attempt has ended already are skipped by the reader, not removed.
type fifo[T any] struct {
	q    []T
	head int
}

func (f *fifo[T]) push(d T) { f.q = append(f.q, d) }
func (f *fifo[T]) len() int { return len(f.q) - f.head }
func (f *fifo[T]) first() T { return f.q[f.head] }
func (f *fifo[T]) reset()   { f.q, f.head = nil, 0 }

// pop drops the first entry, and compacts the queue now and then.
func (f *fifo[T]) pop() {
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	} else if f.head >= 4096 && 2*f.head >= len(f.q) {
		n := copy(f.q, f.q[f.head:])
		f.q, f.head = f.q[:n], 0
	}
}

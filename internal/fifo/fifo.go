// Package fifo is a first-in, first-out queue over one slice, read from its head on: the
// connect stages' deadlines (internal/discover) and the SYN stage's answers (internal/scan).
// It is not safe for concurrent use.
package fifo

// A Queue holds values in the order they were pushed. The zero value is an empty queue.
type Queue[T any] struct {
	q    []T
	head int
}

// Push adds v at the end.
func (f *Queue[T]) Push(v T) { f.q = append(f.q, v) }

// Len is the number of values in the queue.
func (f *Queue[T]) Len() int { return len(f.q) - f.head }

// First returns the oldest value; the queue must not be empty.
func (f *Queue[T]) First() T { return f.q[f.head] }

// Reset empties the queue and lets its storage go.
func (f *Queue[T]) Reset() { f.q, f.head = nil, 0 }

// Pop drops the oldest value (cleared, so that what it points to can be freed) and compacts
// the storage now and then: a queue that is never empty does not grow with all it has held.
func (f *Queue[T]) Pop() {
	var zero T
	f.q[f.head] = zero
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	} else if f.head >= 4096 && 2*f.head >= len(f.q) {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
}

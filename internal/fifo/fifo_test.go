package fifo

import "testing"

// TestQueue pushes and pops across compactions and checks the order, the length, that popped
// values are cleared, and that a queue never empty keeps its storage within twice what it holds.
func TestQueue(t *testing.T) {
	var f Queue[*int]
	next, want := 0, 0
	for round := range 50 {
		for range 1000 {
			v := next
			f.Push(&v)
			next++
		}
		for range 900 + round%3*50 {
			if got := *f.First(); got != want {
				t.Fatalf("first = %d, want %d", got, want)
			}
			f.Pop()
			want++
		}
		if f.Len() != next-want {
			t.Fatalf("len = %d, want %d", f.Len(), next-want)
		}
		for i := range f.head {
			if f.q[i] != nil {
				t.Fatalf("round %d: popped entry %d still held", round, i)
			}
		}
		if held := len(f.q); held > 2*f.Len()+4096 {
			t.Fatalf("round %d: storage holds %d entries for %d queued", round, held, f.Len())
		}
	}
	for f.Len() > 0 {
		f.Pop()
	}
	if len(f.q) != 0 || f.head != 0 {
		t.Errorf("empty queue keeps len %d, head %d", len(f.q), f.head)
	}
	f.Push(nil)
	f.Reset()
	if f.Len() != 0 || f.q != nil {
		t.Errorf("after Reset: len %d", f.Len())
	}
}

package delivery

import "container/heap"

// fifo is a queue of webhooks, first in first out.
type fifo struct {
	items []*hook
	head  int
}

func (q *fifo) push(h *hook) { q.items = append(q.items, h) }

func (q *fifo) pop() *hook {
	if q.head == len(q.items) {
		return nil
	}
	h := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		q.items, q.head = q.items[:n], 0
	}
	return h
}

// waitHeap orders waiting webhooks by when their window opens.
type waitHeap struct{ hs hookHeap }

func (w *waitHeap) add(h *hook)    { heap.Push(&w.hs, h) }
func (w *waitHeap) remove(h *hook) { heap.Remove(&w.hs, h.heapIdx) }

func (w *waitHeap) peek() *hook {
	if len(w.hs) == 0 {
		return nil
	}
	return w.hs[0]
}

type hookHeap []*hook

func (s hookHeap) Len() int           { return len(s) }
func (s hookHeap) Less(i, j int) bool { return s[i].wakeAt < s[j].wakeAt }
func (s hookHeap) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].heapIdx, s[j].heapIdx = i, j
}
func (s *hookHeap) Push(x any) {
	h := x.(*hook)
	h.heapIdx = len(*s)
	*s = append(*s, h)
}
func (s *hookHeap) Pop() any {
	old := *s
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	h.heapIdx = -1
	return h
}

//go:build unix

package bench

import (
	"syscall"
	"unsafe"
)

// offHeap returns n zeroed T in memory the Go heap does not own (an anonymous mapping), with the
// function that gives it back. The bench's bookkeeping lives there so that it neither counts in
// the garbage collector's pacing (which would let the pipeline's heap grow larger than it would
// on its own) nor takes resident memory for pages never touched. T must hold no Go pointers.
func offHeap[T any](n int) ([]T, func()) {
	var zero T
	size := int(unsafe.Sizeof(zero)) * n
	if size == 0 {
		return nil, func() {}
	}
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n), func() {}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(mem))), n), func() { syscall.Munmap(mem) }
}

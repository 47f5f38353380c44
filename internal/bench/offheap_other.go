//go:build !unix

package bench

// offHeap returns n zeroed T (on the Go heap on this system).
func offHeap[T any](n int) ([]T, func()) { return make([]T, n), func() {} }

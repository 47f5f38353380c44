package event

// NormalizeReference exposes the pre-scanner implementation of Normalize (reference_test.go)
// to the external tests.
var NormalizeReference = normalizeReference

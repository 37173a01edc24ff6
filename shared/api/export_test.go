package api

// Unexported functions that tests in api_test check against the docs.
var (
	SignCursor = signCursor
	OpenCursor = openCursor
)

package store

// ListQuery exposes the statement List runs, for the EXPLAIN test.
var ListQuery = listQuery

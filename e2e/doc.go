// Package e2e is the end-to-end suite: the four services as separate
// processes against real Kafka, PostgreSQL and Consul (see harness), with
// ONEX nodes played by pkg/node. The suites follow spec section 10.5.
package e2e

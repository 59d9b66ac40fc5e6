// Package e2e proves the chat side end to end: nats-server, the chat service
// and the chat consumer run as containers built on this machine (see
// internal/images), events go in through NATS from the host, and the
// results are read back over the chat service's Connect API.
//
// The scenarios, one file each:
//
//  1. e2e_seed_test.go: the seed's three flows, with the seed's JSON.
//  2. e2e_postgres_test.go: the same on PostgreSQL.
//  3. e2e_dlq_test.go: poison messages are dead-lettered, listed and replayed.
//  4. e2e_chat_outage_test.go: the chat service is down for 60 s under load.
//  5. e2e_consumer_kill_test.go: the consumer is SIGKILLed amid 5,000 events.
//  6. e2e_nats_cluster_test.go: a stream leader of a 3-node cluster dies.
//  7. e2e_replicas_test.go: two consumer replicas share the durable consumers.
//
// Run them from the repository root with `go test ./test/...`. Scenarios
// whose images cannot be built yet (a service without its Dockerfile) skip,
// and fail under CI=true.
package e2e

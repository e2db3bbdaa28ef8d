// Package failover runs two chatd nodes on RocketMQ as bootstrap/deploy lays
// it out (two name servers, broker-a and broker-b each a master and a slave,
// from tests/infra.RocketMQHA) and measures what each fault of the issue 13
// list does to steady traffic between them: failed sends, delivery pauses,
// messages caught up by sync. The six JVMs start once for the package.
package failover

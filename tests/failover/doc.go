// Package failover runs two chatd nodes on RocketMQ as bootstrap/deploy lays
// it out (two name servers, broker-a and broker-b each a master and a slave,
// from tests/infra.RocketMQHA) and measures what each fault of the issue 13
// list does to steady traffic between them: a name server's death, broker-a's
// master's death and return, broker-a's slave's death, the store stopped and
// started, and the death of the recipients' node. For each it counts failed
// sends, delivery pauses and messages caught up by sync. The six JVMs start
// once for the package.
package failover

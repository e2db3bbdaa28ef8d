// Package failover runs RocketMQ as bootstrap/deploy lays it out (two name
// servers, broker-a and broker-b each a master and a slave, from
// tests/infra.RocketMQHA) and puts it through issue 13's faults. The six JVMs
// start once for the package. TestLayout checks the layout itself: routes,
// a dead master's messages read from its slave, a master's restart on its
// store, a slave's death under the shipped durability settings.
// TestRocketMQSendsSurviveAMastersDeath runs the RocketMQ adapter through a
// master's death. TestFailover runs two chatd nodes on it and measures what
// each fault does to steady traffic between them: a name server's death,
// broker-a's master's death and return, broker-a's slave's death, the store
// stopped and started, and the death of the recipients' node; for each it
// counts failed sends, delivery pauses and messages caught up by sync.
// E2E_DELIVERY_MODE=broadcast runs its nodes in that delivery mode.
package failover

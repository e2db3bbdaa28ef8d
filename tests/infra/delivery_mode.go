package infra

import "os"

// DeliveryModeVar names the variable that, set to broadcast, runs every
// node the e2e, browser and failover suites start in that delivery mode
// instead of the default, routed. The suites leave the developer's CHAT_*
// variables out of their nodes, so the switch has a name of its own.
const DeliveryModeVar = "E2E_DELIVERY_MODE"

// DeliveryMode is the CHAT_DELIVERY_MODE the suites' nodes run in, when
// DeliveryModeVar asks for one.
func DeliveryMode() (mode string, set bool) {
	mode = os.Getenv(DeliveryModeVar)
	return mode, mode != ""
}

// Package browser is chatd's browser test: the web page of adapters/webui,
// driven in Debian's headless Chromium with chromedp, against real chatd
// processes, as two people in two separate browser contexts would use it.
// The two people talk to two nodes of one cluster (a MongoDB-wire store and
// a RocketMQ broker from tests/infra), so what one types reaches the other
// through the broker. `make test` installs Chromium
// (tests/e2e/browser/install.sh) and runs it; it fails, never skips, when
// Chromium is missing. Screenshots of every page go to tests/e2e/artifacts/.
// E2E_DELIVERY_MODE=broadcast runs both nodes in that delivery mode, as it
// does the e2e and failover suites' (infra.DeliveryModeVar).
package browser
